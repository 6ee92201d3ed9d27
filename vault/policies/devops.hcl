# DevOps / SRE in ${env}: read and list every secret of the environment, see health and raft state.
# No secret writes, no policy or auth changes: those go through the configure playbook and review.
path "${kv}/data/*" {
  capabilities = ["read", "list"]
}

path "${kv}/metadata/*" {
  capabilities = ["read", "list"]
}

path "sys/health" {
  capabilities = ["read", "sudo"]
}

path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}

path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}
