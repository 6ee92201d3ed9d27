# Application ${app} in ${env}: read its own secrets only; no list, no write.
path "${kv}/data/apps/${app}/*" {
  capabilities = ["read"]
}
