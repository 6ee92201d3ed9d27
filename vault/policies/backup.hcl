# Raft snapshot job of ${env} (the platform's backup CronJob): take a snapshot, nothing else.
# read = GET sys/storage/raft/snapshot; no update, so no restore (POST) and no snapshot-force.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
