# External Secrets Operator in ${env}: read application secrets of this environment to sync them.
path "${kv}/data/apps/*" {
  capabilities = ["read"]
}

path "${kv}/metadata/apps/*" {
  capabilities = ["read", "list"]
}
