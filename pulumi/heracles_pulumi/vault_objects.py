"""The Vault objects that the declared data (``vault_data.load()``) turns into, as ``{(kind, id): attributes}``.

This is the explicit contract both appliers are held to:

- ``ansible_objects`` is what ``roles/configure/tasks/main.yml`` applies from the same ``load()`` output
  (task by task: password policies, secrets engines with KV v2 config, ACL policies, Kubernetes auth mounts
  with their config and roles, audit devices only when ``configure_audit_file_path`` is set);
- ``pulumi_objects`` reads the resources the pulumi-vault program registered (type token + inputs).

A test runs the pulumi/vault program per stack under mocks and asserts both maps are equal, so a change on
either side that is not made on the other fails the build.
"""

import re

KINDS = ("password_policy", "mount", "kv_config", "acl_policy", "auth", "kubernetes_config", "kubernetes_role", "audit",
         "database_connection", "database_role")

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value):
    """Vault durations ("15m", "1h30m", "3600", 3600) in seconds; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError("not a Vault duration: %r" % value)
    return sum(int(number) * _UNIT[unit] for number, unit in parts)


def _role_attributes(role):
    return {
        "bound_service_account_names": sorted(role["bound_service_account_names"]),
        "bound_service_account_namespaces": sorted(role["bound_service_account_namespaces"]),
        "policies": sorted(role["policies"]),
        "audience": role.get("audience") or None,
        "token_ttl": duration_seconds(role.get("token_ttl")),
        "token_max_ttl": duration_seconds(role.get("token_max_ttl")),
        "token_no_default_policy": bool(role.get("token_no_default_policy")),
    }


def mount_lease(attributes, default_ttl, max_ttl):
    """Database engines carry their lease TTLs (the roles' maximum is checked against them)."""
    if default_ttl or max_ttl:
        attributes.update(default_lease_ttl=int(default_ttl or 0), max_lease_ttl=int(max_ttl or 0))
    return attributes


def database_connection_attributes(conn):
    return {"plugin_name": conn["plugin"], "connection_url": conn["connection_url"], "username": conn["username"],
            "allowed_roles": sorted(conn["allowed_roles"]),
            "max_open_connections": conn.get("max_open_connections")}


def database_role_attributes(role):
    return {"db_name": role["connection"], "creation_statements": list(role["creation_statements"]),
            "revocation_statements": list(role["revocation_statements"]),
            "renew_statements": list(role["renew_statements"]), "rollback_statements": list(role["rollback_statements"]),
            "default_ttl": role["default_ttl"], "max_ttl": role["max_ttl"]}


def ansible_objects(desired, audit_file_path="", kubernetes=None, database_admin=None):
    """What roles/configure applies: ``configure_audit_file_path``, ``configure_kubernetes`` and
    ``configure_database_admin`` as arguments."""
    kubernetes = kubernetes or {}
    database_admin = database_admin or {}
    objects = {}
    # task "Password policies": vault_policy policy_type=password, policies=desired.password_policies
    for name, text in desired["password_policies"].items():
        objects[("password_policy", name)] = {"policy": text}
    # task "Secrets engines": vault_mount per desired.mounts (options, kv_config when present)
    for mount in desired["mounts"]:
        objects[("mount", mount["path"])] = mount_lease(
            {"type": mount["type"], "description": mount["description"],
             "options": {key: str(value) for key, value in mount["options"].items()}},
            (mount.get("config") or {}).get("default_lease_ttl"), (mount.get("config") or {}).get("max_lease_ttl"))
        if "kv_config" in mount:
            objects[("kv_config", mount["path"])] = {"max_versions": mount["kv_config"]["max_versions"],
                                                     "cas_required": mount["kv_config"]["cas_required"]}
    # task "ACL policies": vault_policy policies=desired.policies
    for name, text in desired["policies"].items():
        objects[("acl_policy", name)] = {"policy": text}
    # task "Kubernetes auth mounts, config and roles": vault_auth_kubernetes per desired.auth, exclusive roles
    for auth in desired["auth"]:
        objects[("auth", auth["path"])] = {"type": auth["type"], "description": auth["description"]}
        host = (kubernetes.get(auth["environment"]) or {}).get("kubernetes_host")
        if host:
            objects[("kubernetes_config", auth["path"])] = {"kubernetes_host": host}
        for role in auth["roles"]:
            objects[("kubernetes_role", "%s/%s" % (auth["path"], role["name"]))] = _role_attributes(role)
    # tasks "Database connections" (those with an admin source in configure_database_admin) and "Database roles" of
    # the configured connections
    for databases in desired.get("databases") or []:
        configured = set(database_admin.get(databases["environment"]) or {})
        for conn in databases["connections"]:
            if conn["name"] in configured:
                objects[("database_connection", "%s/%s" % (databases["mount"], conn["name"]))] = \
                    database_connection_attributes(conn)
        for role in databases["roles"]:
            if role["connection"] in configured:
                objects[("database_role", "%s/%s" % (databases["mount"], role["name"]))] = database_role_attributes(role)
    # task "Audit devices": vault_audit per desired.audit, options + file_path, when the path is set
    if audit_file_path:
        for device in desired["audit"]:
            options = {key: str(value) for key, value in device["options"].items()}
            options["file_path"] = audit_file_path
            objects[("audit", device["path"])] = {"type": device["type"], "description": device["description"],
                                                  "options": options}
    return objects


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def pulumi_objects(resources):
    """The same map from registered pulumi-vault resources: ``[(type token, inputs)]`` (inputs unwrapped)."""
    objects = {}
    for token, inputs in resources:
        if token == "vault:index/passwordPolicy:PasswordPolicy":
            objects[("password_policy", inputs["name"])] = {"policy": inputs["policy"]}
        elif token == "vault:index/mount:Mount":
            objects[("mount", inputs["path"])] = mount_lease(
                {"type": inputs["type"], "description": inputs.get("description", ""),
                 "options": dict(inputs.get("options") or {})},
                _plain(inputs.get("defaultLeaseTtlSeconds")), _plain(inputs.get("maxLeaseTtlSeconds")))
        elif token == "vault:database/secretBackendConnection:SecretBackendConnection":
            postgresql = inputs.get("postgresql") or {}
            objects[("database_connection", "%s/%s" % (inputs["backend"], inputs["name"]))] = {
                "plugin_name": inputs.get("pluginName"), "connection_url": postgresql.get("connectionUrl"),
                "username": postgresql.get("username"), "allowed_roles": sorted(inputs.get("allowedRoles") or []),
                "max_open_connections": _plain(postgresql.get("maxOpenConnections"))}
        elif token == "vault:database/secretBackendRole:SecretBackendRole":
            objects[("database_role", "%s/%s" % (inputs["backend"], inputs["name"]))] = {
                "db_name": inputs["dbName"], "creation_statements": list(inputs["creationStatements"]),
                "revocation_statements": list(inputs.get("revocationStatements") or []),
                "renew_statements": list(inputs.get("renewStatements") or []),
                "rollback_statements": list(inputs.get("rollbackStatements") or []),
                "default_ttl": _plain(inputs.get("defaultTtl")) or 0, "max_ttl": _plain(inputs.get("maxTtl")) or 0}
        elif token == "vault:kv/secretBackendV2:SecretBackendV2":
            objects[("kv_config", inputs["mount"])] = {"max_versions": _plain(inputs["maxVersions"]),
                                                       "cas_required": inputs["casRequired"]}
        elif token == "vault:index/policy:Policy":
            objects[("acl_policy", inputs["name"])] = {"policy": inputs["policy"]}
        elif token == "vault:index/authBackend:AuthBackend":
            objects[("auth", inputs["path"])] = {"type": inputs["type"], "description": inputs.get("description", "")}
        elif token == "vault:kubernetes/authBackendConfig:AuthBackendConfig":
            objects[("kubernetes_config", inputs["backend"])] = {"kubernetes_host": inputs["kubernetesHost"]}
        elif token == "vault:kubernetes/authBackendRole:AuthBackendRole":
            objects[("kubernetes_role", "%s/%s" % (inputs["backend"], inputs["roleName"]))] = {
                "bound_service_account_names": sorted(inputs["boundServiceAccountNames"]),
                "bound_service_account_namespaces": sorted(inputs["boundServiceAccountNamespaces"]),
                "policies": sorted(inputs["tokenPolicies"]),
                "audience": inputs.get("audience"),
                "token_ttl": _plain(inputs.get("tokenTtl")),
                "token_max_ttl": _plain(inputs.get("tokenMaxTtl")),
                "token_no_default_policy": bool(inputs.get("tokenNoDefaultPolicy")),
            }
        elif token == "vault:index/audit:Audit":
            objects[("audit", inputs["path"])] = {"type": inputs["type"], "description": inputs.get("description", ""),
                                                  "options": dict(inputs.get("options") or {})}
        elif token.startswith("vault:") and not token.startswith("vault:config") and token != "pulumi:providers:vault":
            raise ValueError("no mapping for %s: add it here and to ansible_objects, or the comparison is blind to it"
                             % token)
    return objects
