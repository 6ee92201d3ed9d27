# Developers: read and list the ${env} environment's application secrets, nothing else (seeds: dev only).
path "${kv}/data/apps/*" {
  capabilities = ["read", "list"]
}

path "${kv}/metadata/apps/*" {
  capabilities = ["read", "list"]
}
