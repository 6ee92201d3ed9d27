# The seed pipeline for ${env}: write application secrets (check-and-set), generate passwords.
path "${kv}/data/apps/*" {
  capabilities = ["create", "read", "update"]
}

path "${kv}/metadata/apps/*" {
  capabilities = ["read", "list"]
}

path "sys/policies/password/heracles-*" {
  capabilities = ["read"]
}
