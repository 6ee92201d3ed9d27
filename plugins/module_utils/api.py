# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thin API layer: one small function per Vault/OpenBao endpoint the modules call.

Each function is named after its endpoint the way hvac names its methods (verb first), its docstring names the HTTP
method and the path, it takes the shared client that ``client.build_client`` made and returns plain data (a dict, a
list, a string, None), usually the answer's ``data`` block.

Retries and leader-following are not repeated here: every request goes through the client's
``LeaderFollowingAdapter`` (``retry.py``), which retries with backoff and moves to the active node for every call,
so a decorator here would only retry twice.  Errors are not caught either (except a 404 that a function documents as
"None when absent"): they reach the module, whose ``VaultModule.fail_from`` turns them into one message with a hint
(``errors.describe``).  Nothing here decides, warns or fails a task.

Modules reach Vault only through this file; ``tests/unit/plugins/module_utils/test_api.py`` keeps it so.
"""

# Still calling hvac directly (owned elsewhere; move their calls here next, then shrink the test's STILL_DIRECT):
#   modules:      (none)
#   module_utils: (none)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import hvac.exceptions as hvac_exc
except ImportError:  # pragma: no cover - VaultModule reports the missing library
    hvac_exc = None


def _data(resp):
    """The ``data`` block of an answer when it is a dict, else the answer itself (older servers: top level)."""
    if not isinstance(resp, dict):
        return {}
    return resp["data"] if isinstance(resp.get("data"), dict) else resp


def _data_only(resp):
    """The ``data`` block of an answer, {} when it has none."""
    return (resp or {}).get("data") or {}


def _keys(resp):
    """``data.keys`` of a LIST answer, [] when there is none."""
    return ((resp or {}).get("data") or {}).get("keys") or []


def _not_found(exc):
    """True for hvac's 404 (``InvalidPath``)."""
    return hvac_exc is not None and isinstance(exc, hvac_exc.InvalidPath)


def _mount_body(kind, description, config, options, local):
    body = dict(type=kind)
    for key, value in (("description", description), ("config", config), ("options", options)):
        if value is not None:
            body[key] = value
    body["local"] = local
    return body


# -- seal, init, leader -------------------------------------------------------------------------
def read_seal_status(client):
    """``GET /v1/sys/seal-status``: initialized, sealed, t, n, progress, type, recovery_seal, version, ..."""
    return client.sys.read_seal_status()


def submit_unseal_key(client, key=None, reset=False):
    """``PUT /v1/sys/unseal`` with one key share, or ``reset`` to drop the progress so far; returns the seal status."""
    return client.sys.submit_unseal_key(key=key, reset=reset)


def initialize(client, **params):
    """``PUT /v1/sys/init`` with hvac's ``initialize`` parameters (secret_shares/threshold or recovery_*, pgp_keys).

    Returns the answer: keys_base64 or recovery_keys_base64, root_token.
    """
    return client.sys.initialize(**params)


def read_leader_status(client):
    """``GET /v1/sys/leader``: is_self, leader_address, raft_committed_index, ..."""
    return client.sys.read_leader_status()


# -- raft and autopilot ---------------------------------------------------------------------------
def read_raft_configuration(client):
    """``GET /v1/sys/storage/raft/configuration`` -> the ``config`` block (``servers``: node_id, address, leader, voter)."""
    return client.sys.read_raft_config()["data"]["config"]


def remove_raft_node(client, node_id):
    """``POST /v1/sys/storage/raft/remove-peer`` for ``node_id``."""
    client.sys.remove_raft_node(node_id)


def join_raft_cluster(client, leader_api_addr, leader_ca_cert=None, non_voter=False):
    """``POST /v1/sys/storage/raft/join`` on the joining node (``client`` pinned to it) -> the answer (``joined``)."""
    resp = client.sys.join_raft_cluster(leader_api_addr=leader_api_addr, leader_ca_cert=leader_ca_cert,
                                        non_voter=non_voter)
    return resp.json() if hasattr(resp, "json") else resp


def read_autopilot_state(client):
    """``GET /v1/sys/storage/raft/autopilot/state``: healthy, failure_tolerance, leader, voters, servers."""
    return _data_only(client.adapter.get("/v1/sys/storage/raft/autopilot/state"))


def read_autopilot_configuration(client):
    """``GET /v1/sys/storage/raft/autopilot/configuration``."""
    return _data_only(client.adapter.get("/v1/sys/storage/raft/autopilot/configuration"))


def configure_autopilot(client, config):
    """``POST /v1/sys/storage/raft/autopilot/configuration`` with the fields in ``config``."""
    client.adapter.post("/v1/sys/storage/raft/autopilot/configuration", json=config)


# -- raft snapshots, health -----------------------------------------------------------------------
def take_raft_snapshot(client):
    """``GET /v1/sys/storage/raft/snapshot`` -> the streamed ``requests.Response`` (a tar.gz); the caller closes it.

    Returned unread (JSONAdapter would read the whole snapshot into memory); retried until the body starts.
    """
    return client.adapter.raw_request("GET", "/v1/sys/storage/raft/snapshot", stream=True)


def restore_raft_snapshot(client, snapshot, force=False):
    """``POST /v1/sys/storage/raft/snapshot`` (``snapshot-force`` with ``force``): the cluster's data is replaced.

    ``snapshot`` is an open file, streamed as the body. Sent once: a body that streams cannot be sent twice, and a
    restore that may have half happened must be looked at, not repeated.
    """
    return client.adapter.raw_request("POST", "/v1/sys/storage/raft/snapshot" + ("-force" if force else ""),
                                      retry=False, data=snapshot, headers={"Content-Type": "application/octet-stream"})


def read_health_status(client):
    """``GET /v1/sys/health?standbyok=true`` (unauthenticated): initialized, sealed, standby, cluster_id, version."""
    return client.sys.read_health_status(method="GET", standby_ok=True)


def read_active_node(client):
    """``GET /v1/sys/leader`` on the configured nodes -> the active node's address; the client now points at it.

    For a new attempt after a transfer was cut mid-way, when the leader may have changed.
    """
    return client.adapter.move_to_leader()


# -- secrets engines and auth methods (the mount tables) ------------------------------------------
def list_mounted_secrets_engines(client):
    """``GET /v1/sys/mounts``: ``{"<path>/": {type, description, options, local, ...}}``."""
    return _data(client.adapter.get("/v1/sys/mounts"))


def read_mount_configuration(client, path):
    """``GET /v1/sys/mounts/<path>/tune``: default_lease_ttl, max_lease_ttl, description, options, ..."""
    return _data(client.adapter.get("/v1/sys/mounts/%s/tune" % path))


def enable_secrets_engine(client, backend_type, path, description=None, config=None, options=None, local=False):
    """``POST /v1/sys/mounts/<path>``: a new ``backend_type`` engine (description/config/options when given)."""
    client.adapter.post("/v1/sys/mounts/%s" % path, json=_mount_body(backend_type, description, config, options, local))


def tune_mount_configuration(client, path, params):
    """``POST /v1/sys/mounts/<path>/tune`` with the settings in ``params``."""
    client.adapter.post("/v1/sys/mounts/%s/tune" % path, json=params)


def disable_secrets_engine(client, path):
    """``DELETE /v1/sys/mounts/<path>``: the engine and all its data."""
    client.adapter.delete("/v1/sys/mounts/%s" % path)


def list_auth_methods(client):
    """``GET /v1/sys/auth``: ``{"<path>/": {type, accessor, description, ...}}``."""
    return _data(client.adapter.get("/v1/sys/auth"))


def read_auth_method_tuning(client, path):
    """``GET /v1/sys/auth/<path>/tune``."""
    return _data(client.adapter.get("/v1/sys/auth/%s/tune" % path))


def enable_auth_method(client, method_type, path, description=None, config=None, options=None, local=False):
    """``POST /v1/sys/auth/<path>``: a new ``method_type`` auth method (description/config/options when given)."""
    client.adapter.post("/v1/sys/auth/%s" % path, json=_mount_body(method_type, description, config, options, local))


def tune_auth_method(client, path, params):
    """``POST /v1/sys/auth/<path>/tune`` with the settings in ``params`` (e.g. description)."""
    client.adapter.post("/v1/sys/auth/%s/tune" % path, json=params)


def disable_auth_method(client, path):
    """``DELETE /v1/sys/auth/<path>``: the auth method with its configuration and roles."""
    client.adapter.delete("/v1/sys/auth/%s" % path)


# -- KV version 2 ---------------------------------------------------------------------------------
def read_kv_config(client, mount):
    """``GET /v1/<mount>/config``: max_versions, cas_required, delete_version_after."""
    return _data_only(client.adapter.get("/v1/%s/config" % mount))


def configure_kv(client, mount, config):
    """``POST /v1/<mount>/config`` with ``config`` (max_versions, cas_required, delete_version_after)."""
    client.adapter.post("/v1/%s/config" % mount, json=config)


def read_secret_version(client, mount, path):
    """``GET /v1/<mount>/data/<path>`` -> the whole answer (``data.data``, ``data.metadata``).

    A deleted latest version is returned, not raised; a path never written raises hvac's InvalidPath, whose ``json``
    may still carry the metadata.
    """
    return client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=False)


def create_or_update_secret(client, mount, path, data, cas):
    """``POST /v1/<mount>/data/<path>`` with ``options.cas`` -> the ``data`` block (``version``)."""
    resp = client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=cas, mount_point=mount)
    return (resp or {}).get("data") or {}


def list_secrets(client, mount, path):
    """``LIST /v1/<mount>/metadata/<path>`` -> the names directly under ``path`` (folders end in ``/``).

    A path with nothing under it raises hvac's InvalidPath (404).
    """
    return _keys(client.secrets.kv.v2.list_secrets(path=path, mount_point=mount))


def read_secret_metadata(client, mount, path):
    """``GET /v1/<mount>/metadata/<path>``: current_version, versions, custom_metadata (never a value); None when absent."""
    try:
        resp = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
    except Exception as exc:  # noqa: BLE001 - only a 404 is an answer
        if _not_found(exc):
            return None
        raise
    return _data_only(resp)


def update_metadata(client, mount, path, custom_metadata):
    """``POST /v1/<mount>/metadata/<path>`` with ``custom_metadata`` (replaces the whole custom map)."""
    client.adapter.post("/v1/%s/metadata/%s" % (mount, path), json={"custom_metadata": custom_metadata})


def destroy_secret_versions(client, mount, path, versions):
    """``PUT /v1/<mount>/destroy/<path>``: the ``versions`` are destroyed for good."""
    client.secrets.kv.v2.destroy_secret_versions(path=path, versions=versions, mount_point=mount)


def read_kv1_secret(client, mount, path):
    """KV version 1: ``GET /v1/<mount>/<path>`` -> the whole answer (``data``); a path never written raises InvalidPath."""
    return client.secrets.kv.v1.read_secret(path=path, mount_point=mount)


def list_kv1_secrets(client, mount, path):
    """KV version 1: ``LIST /v1/<mount>/<path>`` -> the names directly under ``path`` (folders end in ``/``)."""
    return _keys(client.secrets.kv.v1.list_secrets(path=path, mount_point=mount))


def delete_metadata_and_all_versions(client, mount, path):
    """``DELETE /v1/<mount>/metadata/<path>``: every version and the metadata."""
    client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=mount)


# -- policies -------------------------------------------------------------------------------------
def list_policies(client, policy_type="acl"):
    """``LIST /v1/sys/policies/<type>`` (acl or password) -> names; [] when there is none yet (404)."""
    try:
        return (client.adapter.list("/v1/sys/policies/%s" % policy_type) or {}).get("data", {}).get("keys", [])
    except Exception as exc:  # noqa: BLE001 - only a 404 is an answer
        if _not_found(exc):
            return []
        raise


def read_policy(client, name, policy_type="acl"):
    """``GET /v1/sys/policies/<type>/<name>`` -> the policy text; None when absent."""
    try:
        return client.adapter.get("/v1/sys/policies/%s/%s" % (policy_type, name))["data"]["policy"]
    except Exception as exc:  # noqa: BLE001 - only a 404 is an answer
        if _not_found(exc):
            return None
        raise


def create_or_update_policy(client, name, text, policy_type="acl"):
    """``POST /v1/sys/policies/<type>/<name>`` with the policy text (the server parses it)."""
    client.adapter.post("/v1/sys/policies/%s/%s" % (policy_type, name), json={"policy": text})


def delete_policy(client, name, policy_type="acl"):
    """``DELETE /v1/sys/policies/<type>/<name>``."""
    client.adapter.delete("/v1/sys/policies/%s/%s" % (policy_type, name))


def generate_password(client, policy):
    """``GET /v1/sys/policies/password/<policy>/generate`` -> a new password (read-only: check mode may call it).

    An unknown policy raises hvac's InvalidPath.
    """
    return client.adapter.get("/v1/sys/policies/password/%s/generate" % policy)["data"]["password"]


# -- audit devices and server configuration -------------------------------------------------------
def list_audit_devices(client):
    """``GET /v1/sys/audit`` (needs sudo): ``{"<path>/": {type, description, local, options, path}}``."""
    body = client.adapter.get("/v1/sys/audit") or {}
    return body.get("data") if isinstance(body.get("data"), dict) else body


def enable_audit_device(client, path, device_type, description, local, options):
    """``PUT /v1/sys/audit/<path>`` with type, description, local and the options string map."""
    client.adapter.put("/v1/sys/audit/%s" % path, json=dict(type=device_type, description=description, local=local,
                                                            options=options))


def disable_audit_device(client, path):
    """``DELETE /v1/sys/audit/<path>``."""
    client.adapter.delete("/v1/sys/audit/%s" % path)


def read_sanitized_configuration(client):
    """``GET /v1/sys/config/state/sanitized``: the server configuration without secrets (OpenBao lists ``audits``)."""
    body = client.adapter.get("/v1/sys/config/state/sanitized") or {}
    return body.get("data") if isinstance(body.get("data"), dict) else body


# -- the barrier encryption key -------------------------------------------------------------------
def read_key_status(client):
    """``GET /v1/sys/key-status``: term, install_time (RFC 3339), encryptions."""
    data = client.adapter.get("/v1/sys/key-status")
    return data.get("data") or data


def rotate_encryption_key(client):
    """``POST /v1/sys/rotate``: a new barrier key term (needs sudo)."""
    client.adapter.post("/v1/sys/rotate")


# -- rekey of the unseal/recovery keys ------------------------------------------------------------
# Two APIs with the same calls: ``kind="rotate"`` is OpenBao >= 2.4's authenticated sys/rotate/(root|recovery)/*,
# written with POST; ``kind="rekey"`` the older unauthenticated sys/rekey[-recovery-key]/*, written with PUT.
def _rekey_base(kind, recovery):
    if kind == "rotate":
        return "/v1/sys/rotate/%s" % ("recovery" if recovery else "root")
    return "/v1/sys/%s" % ("rekey-recovery-key" if recovery else "rekey")


def _rekey_write(client, kind):
    return client.adapter.post if kind == "rotate" else client.adapter.put


def read_rekey_progress(client, kind, recovery=False):
    """``GET /v1/sys/rotate/<root|recovery>/init`` or ``GET /v1/sys/rekey[-recovery-key]/init``.

    started, nonce, t, n, progress, required, verification_nonce.
    """
    return _data(client.adapter.get(_rekey_base(kind, recovery) + "/init"))


def start_rekey(client, kind, shares, threshold, recovery=False):
    """``POST /v1/sys/rotate/<root|recovery>/init`` or ``PUT /v1/sys/rekey[-recovery-key]/init``.

    Always with ``require_verification=true``; returns the nonce and the shape.
    """
    body = dict(secret_shares=shares, secret_threshold=threshold, require_verification=True)
    return _data(_rekey_write(client, kind)(_rekey_base(kind, recovery) + "/init", json=body))


def cancel_rekey(client, kind, recovery=False):
    """``DELETE /v1/sys/rotate/<root|recovery>/init`` or ``DELETE /v1/sys/rekey[-recovery-key]/init``.

    The rekey (and any pending verification) is dropped; the old keys stay.
    """
    client.adapter.delete(_rekey_base(kind, recovery) + "/init")


def submit_rekey_key(client, kind, key, nonce, recovery=False):
    """``POST /v1/sys/rotate/<root|recovery>/update`` or ``PUT /v1/sys/rekey[-recovery-key]/update``: one current share.

    The answer completing the threshold carries the new keys (keys_base64) and the verification nonce.
    """
    return _data(_rekey_write(client, kind)(_rekey_base(kind, recovery) + "/update", json=dict(key=key, nonce=nonce)))


def read_rekey_verify_progress(client, kind, recovery=False):
    """``GET /v1/sys/rotate/<root|recovery>/verify`` or ``GET /v1/sys/rekey[-recovery-key]/verify``: nonce, progress."""
    return _data(client.adapter.get(_rekey_base(kind, recovery) + "/verify"))


def submit_rekey_verify_key(client, kind, key, nonce, recovery=False):
    """``POST /v1/sys/rotate/<root|recovery>/verify`` or ``PUT /v1/sys/rekey[-recovery-key]/verify``: one new share."""
    return _data(_rekey_write(client, kind)(_rekey_base(kind, recovery) + "/verify", json=dict(key=key, nonce=nonce)))


# -- tokens, leases, capabilities -----------------------------------------------------------------
def create_token(client, **params):
    """``POST /v1/auth/token/create`` with ``params`` (policies, ttl, ...) -> the ``auth`` block (client_token, accessor)."""
    return client.adapter.post("/v1/auth/token/create", json=params)["auth"]


def lookup_accessor(client, accessor):
    """``POST /v1/auth/token/lookup-accessor`` -> the token's properties (400 "invalid accessor" when it is gone)."""
    return _data_only(client.adapter.post("/v1/auth/token/lookup-accessor", json={"accessor": accessor}))


def revoke_accessor(client, accessor):
    """``POST /v1/auth/token/revoke-accessor``: the token and its children."""
    client.adapter.post("/v1/auth/token/revoke-accessor", json={"accessor": accessor})


def revoke_self(client):
    """``POST /v1/auth/token/revoke-self``: the client's own token."""
    client.adapter.post("/v1/auth/token/revoke-self")


def lookup_self(client):
    """``GET /v1/auth/token/lookup-self`` -> the client's own token's properties (403 when the token is not valid)."""
    return _data_only(client.auth.token.lookup_self())


def list_leases(client, prefix):
    """``LIST /v1/sys/leases/lookup/<prefix>`` -> lease ids and sub-prefixes (ending in ``/``); 404 raises."""
    return (client.adapter.list("/v1/sys/leases/lookup/%s" % prefix) or {}).get("data", {}).get("keys", [])


def revoke_prefix(client, prefix):
    """``PUT /v1/sys/leases/revoke-prefix/<prefix>``: every lease under it."""
    client.adapter.put("/v1/sys/leases/revoke-prefix/%s" % prefix)


# -- the database secrets engine ------------------------------------------------------------------
def _absent_as(default, call):
    """``call()``, or ``default`` when the server answers 404."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - anything else reaches the module
        if _not_found(exc):
            return default
        raise


def read_database_connection(client, mount, name):
    """``GET /v1/<mount>/config/<name>``: the stored configuration (never a password); None when absent."""
    return _absent_as(None, lambda: (client.adapter.get("/v1/%s/config/%s" % (mount, name)) or {}).get("data"))


def list_database_connections(client, mount):
    """``LIST /v1/<mount>/config`` -> sorted connection names ([] when there is none)."""
    return sorted(_absent_as([], lambda: _keys(client.adapter.list("/v1/%s/config" % mount))))


def configure_database_connection(client, mount, name, payload):
    """``POST /v1/<mount>/config/<name>``: an update merges into the stored details (an omitted password stays)."""
    client.adapter.post("/v1/%s/config/%s" % (mount, name), json=payload)


def delete_database_connection(client, mount, name):
    """``DELETE /v1/<mount>/config/<name>``."""
    client.adapter.delete("/v1/%s/config/%s" % (mount, name))


def rotate_database_root_credentials(client, mount, name):
    """``POST /v1/<mount>/rotate-root/<name>``: Vault sets a new admin password only it knows."""
    client.adapter.post("/v1/%s/rotate-root/%s" % (mount, name))


def list_database_roles(client, mount):
    """``LIST /v1/<mount>/roles`` -> sorted role names ([] when there is none)."""
    return sorted(_absent_as([], lambda: _keys(client.adapter.list("/v1/%s/roles" % mount))))


def read_database_role(client, mount, name):
    """``GET /v1/<mount>/roles/<name>``; None when absent."""
    return _absent_as(None, lambda: (client.adapter.get("/v1/%s/roles/%s" % (mount, name)) or {}).get("data"))


def create_database_role(client, mount, name, role):
    """``POST /v1/<mount>/roles/<name>``: creates or replaces the role."""
    client.adapter.post("/v1/%s/roles/%s" % (mount, name), json=role)


def delete_database_role(client, mount, name):
    """``DELETE /v1/<mount>/roles/<name>``."""
    client.adapter.delete("/v1/%s/roles/%s" % (mount, name))


def generate_database_credentials(client, mount, role):
    """``GET /v1/<mount>/creds/<role>`` -> ``{username, password, lease_id, lease_duration}``."""
    resp = client.adapter.get("/v1/%s/creds/%s" % (mount, role))
    data = resp.get("data") or {}
    return dict(username=data.get("username"), password=data.get("password"), lease_id=resp.get("lease_id"),
                lease_duration=resp.get("lease_duration"))


def revoke_lease(client, lease_id):
    """``PUT /v1/sys/leases/revoke``: one lease (for a database credential: the role's revocation statements run)."""
    client.adapter.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})


def _capabilities(resp, paths):
    resp = resp or {}
    data = resp.get("data") if isinstance(resp.get("data"), dict) else resp
    out = {}
    for path in paths:
        caps = data.get(path)
        if caps is None and len(paths) == 1:
            caps = data.get("capabilities")
        out[path] = sorted(caps or [])
    return out


def read_capabilities_of_accessor(client, accessor, paths):
    """``POST /v1/sys/capabilities-accessor`` -> ``{path: sorted capabilities}`` of the token with ``accessor``."""
    return _capabilities(client.adapter.post("/v1/sys/capabilities-accessor", json=dict(accessor=accessor, paths=paths)),
                         paths)


def read_capabilities_self(client, paths):
    """``POST /v1/sys/capabilities-self`` -> ``{path: sorted capabilities}`` of the client's own token."""
    return _capabilities(client.adapter.post("/v1/sys/capabilities-self", json=dict(paths=paths)), paths)


# -- the Kubernetes and AppRole auth methods ------------------------------------------------------
def login_kubernetes(client, role, jwt, mount="kubernetes"):
    """``POST /v1/auth/<mount>/login`` with a service-account JWT: sets the client's token, returns the ``auth`` block."""
    return client.auth.kubernetes.login(role, jwt, mount_point=mount)["auth"]


def login_approle(client, role_id, secret_id=None, mount="approle"):
    """``POST /v1/auth/<mount>/login`` with role_id and secret_id: sets the client's token, returns the ``auth`` block."""
    return client.auth.approle.login(role_id, secret_id=secret_id, mount_point=mount)["auth"]


def read_kubernetes_config(client, mount):
    """``GET /v1/auth/<mount>/config``: kubernetes_host, CA, issuer, token_reviewer_jwt_set; None before the first write."""
    return (client.read("auth/%s/config" % mount) or {}).get("data")


def configure_kubernetes(client, mount, config):
    """``POST /v1/auth/<mount>/config``: Vault replaces the whole configuration with ``config``."""
    client.write_data("auth/%s/config" % mount, data=config)


def list_kubernetes_roles(client, mount):
    """``LIST /v1/auth/<mount>/role`` -> sorted role names ([] when there is none)."""
    return sorted(_keys(client.list("auth/%s/role" % mount)))


def read_kubernetes_role(client, mount, name):
    """``GET /v1/auth/<mount>/role/<name>`` -> the role's settings; None when absent."""
    return (client.read("auth/%s/role/%s" % (mount, name)) or {}).get("data")


def create_kubernetes_role(client, mount, name, role):
    """``POST /v1/auth/<mount>/role/<name>``: creates or replaces the role with ``role``."""
    client.write_data("auth/%s/role/%s" % (mount, name), data=role)


def delete_kubernetes_role(client, mount, name):
    """``DELETE /v1/auth/<mount>/role/<name>``."""
    client.delete("auth/%s/role/%s" % (mount, name))
