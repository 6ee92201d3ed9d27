# The in-cluster rotation job of ${env} (pulumi/platform's CronJob runs playbooks/rotate.yml): new versions of the
# apps' generated fields (check-and-set writes) and their rotation stamps in custom metadata. No delete, no destroy,
# nothing under sys/ (the barrier key and unseal keys stay operator actions).
path "${kv}/data/apps/*" {
  capabilities = ["read", "create", "update"]
}

path "${kv}/metadata/apps/*" {
  capabilities = ["read", "list", "update"]
}
