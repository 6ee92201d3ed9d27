# Application ${app} in ${env}: credentials of its own database role ${role} (appended to its policy per role).
path "${mount}/creds/${role}" {
  capabilities = ["read"]
}
