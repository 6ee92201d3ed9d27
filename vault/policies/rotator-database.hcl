# The rotation job of ${env} rotates the root credential of each ${mount} connection when its window has passed,
# and records when in the connection's configuration. No role, lease or creds path.
path "${mount}/rotate-root/*" {
  capabilities = ["update"]
}

path "${mount}/config" {
  capabilities = ["list"]
}

path "${mount}/config/*" {
  capabilities = ["read", "update"]
}
