"""Vault's configuration as a running server holds it, read back as ``{(kind, id): attributes}``.

The shape is ``vault_objects``' (``pulumi_objects`` maps what the pulumi-vault program registers to it), so what an
applier left in a real Vault or OpenBao compares with what the other applier would register, attribute by attribute.

``read_vault_objects`` does no I/O of its own: the caller hands it ``get(path)``, which answers the ``data`` of
``GET /v1/<path>`` (``None`` for a 404; ``?list=true`` lists), and ``in_scope(kind, id)``, which says which of the
listed objects belong to the comparison (a shared server holds other objects too). Everything else is a pure mapping
of one API answer to the attributes ``pulumi_objects`` produces for the same object.
"""

from heracles_pulumi.vault_objects import duration_seconds, mount_lease

PASSWORD_POLICIES = "sys/policies/password"
ACL_POLICIES = "sys/policies/acl"
SECRETS_ENGINES = "sys/mounts"
AUTH_METHODS = "sys/auth"
AUDIT_DEVICES = "sys/audit"
# Created by Vault itself, never by an applier: not part of any comparison.
BUILTIN_POLICIES = ("default", "root")
BUILTIN_MOUNTS = ("cubbyhole", "identity", "sys", "token")


def _path(listed):
    return listed.rstrip("/")


def _unset_zero(seconds):
    """Vault reads an unset duration back as 0 (the system default applies); a declaration leaves it out (None)."""
    return seconds or None


def password_policy_attributes(data):
    """``GET sys/policies/password/<name>``."""
    return {"policy": data["policy"]}


def acl_policy_attributes(data):
    """``GET sys/policies/acl/<name>``: the HCL text as it was written."""
    return {"policy": data["policy"]}


def mount_attributes(entry):
    """One entry of ``GET sys/mounts``; Vault answers ``options: null`` for engines that take none. A database engine
    carries its lease TTLs (``config``; 0 = the system default, which no declaration leaves)."""
    attributes = {"type": entry["type"], "description": entry.get("description") or "",
                  "options": {key: str(value) for key, value in (entry.get("options") or {}).items()}}
    if entry["type"] == "database":
        config = entry.get("config") or {}
        mount_lease(attributes, config.get("default_lease_ttl"), config.get("max_lease_ttl"))
    return attributes


def database_connection_attributes(data):
    """``GET <mount>/config/<name>``: never a password (Vault does not return one); heracles' markers left out."""
    details = data.get("connection_details") or {}
    max_open = details.get("max_open_connections")
    return {"plugin_name": data.get("plugin_name"), "connection_url": details.get("connection_url"),
            "username": details.get("username"), "allowed_roles": sorted(data.get("allowed_roles") or []),
            "max_open_connections": int(max_open) if max_open not in (None, "") else None}


def database_role_attributes(data):
    """``GET <mount>/roles/<name>``: TTLs in seconds, statements in order."""
    return {"db_name": data.get("db_name"), "creation_statements": list(data.get("creation_statements") or []),
            "revocation_statements": list(data.get("revocation_statements") or []),
            "renew_statements": list(data.get("renew_statements") or []),
            "rollback_statements": list(data.get("rollback_statements") or []),
            "default_ttl": int(duration_seconds(data.get("default_ttl")) or 0),
            "max_ttl": int(duration_seconds(data.get("max_ttl")) or 0)}


def is_kv_v2(entry):
    return entry["type"] == "kv" and str((entry.get("options") or {}).get("version")) == "2"


def kv_config_attributes(data):
    """``GET <mount>/config`` of a KV v2 mount."""
    return {"max_versions": int(data["max_versions"]), "cas_required": bool(data["cas_required"])}


def auth_attributes(entry):
    """One entry of ``GET sys/auth``."""
    return {"type": entry["type"], "description": entry.get("description") or ""}


def kubernetes_config_attributes(data):
    """``GET auth/<mount>/config``; None while the mount has no configuration (no host)."""
    if not data or not data.get("kubernetes_host"):
        return None
    return {"kubernetes_host": data["kubernetes_host"]}


def kubernetes_role_attributes(data):
    """``GET auth/<mount>/role/<name>``: durations in seconds, unset ones (0) as None, lists sorted."""
    return {
        "bound_service_account_names": sorted(data.get("bound_service_account_names") or []),
        "bound_service_account_namespaces": sorted(data.get("bound_service_account_namespaces") or []),
        # token_policies since Vault 1.2; older servers (and the deprecated alias) answer policies
        "policies": sorted(data.get("token_policies") or data.get("policies") or []),
        "audience": data.get("audience") or None,
        "token_ttl": _unset_zero(duration_seconds(data.get("token_ttl"))),
        "token_max_ttl": _unset_zero(duration_seconds(data.get("token_max_ttl"))),
        "token_no_default_policy": bool(data.get("token_no_default_policy")),
    }


def audit_attributes(entry):
    """One entry of ``GET sys/audit``."""
    return {"type": entry["type"], "description": entry.get("description") or "",
            "options": {key: str(value) for key, value in (entry.get("options") or {}).items()}}


def _listed(get, path):
    data = get(path + "?list=true")
    return list((data or {}).get("keys") or [])


def read_vault_objects(get, in_scope=lambda kind, ident: True):
    """Every password policy, ACL policy, secrets engine (KV v2 config included), auth method (Kubernetes config and
    every role of the mount) and audit device ``in_scope`` admits, as ``pulumi_objects`` would describe it.

    Reads ``sys/policies/password``, ``sys/policies/acl``, ``sys/mounts`` (and ``<mount>/config`` of KV v2 mounts,
    every connection and role of database engines),
    ``sys/auth`` (and ``auth/<mount>/config`` and ``auth/<mount>/role`` of Kubernetes mounts) and ``sys/audit``.
    Roles are read in full for every admitted Kubernetes mount: a role nobody declared is part of the mount's state.
    """
    objects = {}
    for name in _listed(get, PASSWORD_POLICIES):
        if in_scope("password_policy", name):
            objects[("password_policy", name)] = password_policy_attributes(get("%s/%s" % (PASSWORD_POLICIES, name)))
    for name in _listed(get, ACL_POLICIES):
        if name not in BUILTIN_POLICIES and in_scope("acl_policy", name):
            objects[("acl_policy", name)] = acl_policy_attributes(get("%s/%s" % (ACL_POLICIES, name)))
    for listed, entry in sorted((get(SECRETS_ENGINES) or {}).items()):
        path = _path(listed)
        if entry["type"] in BUILTIN_MOUNTS or not in_scope("mount", path):
            continue
        objects[("mount", path)] = mount_attributes(entry)
        if is_kv_v2(entry):
            objects[("kv_config", path)] = kv_config_attributes(get("%s/config" % path))
        if entry["type"] == "database":
            for name in _listed(get, "%s/config" % path):
                objects[("database_connection", "%s/%s" % (path, name))] = database_connection_attributes(
                    get("%s/config/%s" % (path, name)))
            for name in _listed(get, "%s/roles" % path):
                objects[("database_role", "%s/%s" % (path, name))] = database_role_attributes(
                    get("%s/roles/%s" % (path, name)))
    for listed, entry in sorted((get(AUTH_METHODS) or {}).items()):
        path = _path(listed)
        if entry["type"] in BUILTIN_MOUNTS or not in_scope("auth", path):
            continue
        objects[("auth", path)] = auth_attributes(entry)
        if entry["type"] != "kubernetes":
            continue
        config = kubernetes_config_attributes(get("auth/%s/config" % path))
        if config is not None:
            objects[("kubernetes_config", path)] = config
        for role in _listed(get, "auth/%s/role" % path):
            objects[("kubernetes_role", "%s/%s" % (path, role))] = kubernetes_role_attributes(
                get("auth/%s/role/%s" % (path, role)))
    for listed, entry in sorted((get(AUDIT_DEVICES) or {}).items()):
        path = _path(listed)
        if in_scope("audit", path):
            objects[("audit", path)] = audit_attributes(entry)
    return objects


def object_differences(expected, actual):
    """Where two ``{(kind, id): attributes}`` maps disagree, sorted: ``(key, attribute, expected, actual)``.

    An object on one side only is one entry with attribute None and the whole attributes (or None) as its values.
    Equal maps give ``[]``.
    """
    differences = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual or key not in expected:
            differences.append((key, None, expected.get(key), actual.get(key)))
            continue
        for attribute in sorted(set(expected[key]) | set(actual[key])):
            want, have = expected[key].get(attribute), actual[key].get(attribute)
            if want != have:
                differences.append((key, attribute, want, have))
    return differences
