"""Bad input for every module: the task fails, says what is wrong and what to do, and changes nothing.

One table, one row per case: the module, the bad arguments, the words the message must contain (the cause
and the fix), and the state the case could damage (the "probe" column). Each case reads the whole state
before and after -- on the shared session cluster: ACL and password policy names, secrets engines, auth
methods, audit devices, a KV mount of this file's own (every path's versions and custom metadata), raft
peers and autopilot, the encryption key term, every node's seal status and the encrypted init file; on a
second, sealed one-node cluster: its seal status; on disk: a scratch directory -- and asserts they are equal.
Every case must fail with a non-zero exit, print its JSON (no traceback crash), and not report a change.

Cases that tests/integration already covers are not repeated here (docs/reliability.md lists them with
their test ids): unparseable HCL (test_configure_modules), unknown secrets engine (test_configure_modules),
unknown audit type and log_raw (test_audit), non-mapping secret data, paths outside vault_kv_seed's prefix and
'..' paths (test_configure_modules), truncated, corrupt and tampered snapshots (test_snapshot), wrong unseal
keys on an uninitialised-then-initialised cluster and a wrong ansible-vault password for vault_unseal
(test_bootstrap_modules), a wrong CA for vault_status_info and a bad token for vault_raft (test_leader_following).
"""

import base64
import hashlib
import os
import secrets
import time

import certifi
import hvac.exceptions
import pytest
import requests

from heracles_faults import wait_leader
from heracles_testlib import ClusterHandle, find_leaks, keystore, run_module

MODULES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "plugins", "modules")
SFX = secrets.token_hex(3)
KV = "kv-badinput-%s" % SFX
PWPOLICY = "heracles-badinput-%s" % SFX
PWPOLICY_HCL = 'length = 20\nrule "charset" {\n  charset = "abcdefghijklmnopqrstuvwxyz0123456789"\n}\n'
BOGUS_TOKEN = "s." + secrets.token_hex(12)
GOOD_POLICY = 'path "%s/data/apps/*" {\n  capabilities = ["read"]\n}\n' % KV


class World:
    """Everything the cases point at, and the state they must leave alone."""

    def __init__(self, cluster, other, base):
        self.cluster = cluster
        self.other = other  # a one-node cluster, initialised, sealed again; its snapshot is foreign to `cluster`
        self.scratch = os.path.join(base, "scratch")
        self.root_token = cluster.root_token
        self.wrong_pass = os.path.join(base, "wrong-pass")
        self.wrong_keys = os.path.join(base, "wrong-keys.vault")
        self.foreign_snapshot = os.path.join(base, "foreign.snap")
        self.empty_snapshot = os.path.join(base, "empty.snap")
        self.weak_token = None
        self.weak_accessor = None
        self.expired_token = None
        self.expired_accessor = None
        self.expires_at = 0.0

    def root(self):
        client = hvac.Client(url=self.cluster.leader() or self.cluster.url, verify=self.cluster.ca_cert)
        client.token = self.root_token
        return client

    def conn(self, **kw):
        return self.cluster.conn(**kw)

    def expired(self):
        time.sleep(max(0.0, self.expires_at - time.time()))
        return self.expired_token


@pytest.fixture(scope="module")
def world(cluster, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("badinput"))
    other = ClusterHandle(os.path.join(base, "other"), node_count=1).start()
    try:
        conn = other.conn(auth_method="none", nodes=[])
        assert not run_module("vault_init", dict(conn, secret_shares=1, secret_threshold=1)).failed
        assert not run_module("vault_unseal", conn).failed
        wait_leader(other)
        w = World(cluster, other, base)
        os.makedirs(w.scratch)
        for name in ("raft-a.snap", "raft-b.snap"):
            with open(os.path.join(w.scratch, name), "wb") as handle:
                handle.write(os.urandom(64))
        res = run_module("vault_raft_snapshot", other.conn(nodes=[], path=w.foreign_snapshot))
        assert not res.failed, res
        other.lc.stop_node(other.lc.nodes[0])
        other.lc.start_node(other.lc.nodes[0])  # back sealed, with data: the wrong-key case needs that

        with open(w.wrong_pass, "w") as handle:
            handle.write("not-the-password\n")
        keystore.FileStore(w.wrong_keys, other.password).write(
            dict(version=1, unseal_keys_b64=[base64.b64encode(os.urandom(33)).decode()]))
        open(w.empty_snapshot, "wb").close()

        root = w.root()
        res = run_module("vault_mount", cluster.conn(path=KV, type="kv", options={"version": "2"}))
        assert not res.failed, res
        root.adapter.post("/v1/sys/policies/password/%s" % PWPOLICY, json={"policy": PWPOLICY_HCL})
        res = run_module("vault_kv_seed", cluster.conn(mount=KV, prefix="apps", secrets={
            "apps/one": {"user": "one", "password": "seeded-" + secrets.token_hex(8)},
            "apps/two": {"user": "two", "password": "seeded-" + secrets.token_hex(8)}}))
        assert not res.failed and res["created"] == 2, res
        weak = root.auth.token.create(policies=["default"], ttl="30m")["auth"]
        w.weak_token, w.weak_accessor = weak["client_token"], weak["accessor"]
        expiring = root.auth.token.create(policies=["default"], ttl="2s", explicit_max_ttl="2s")["auth"]
        w.expired_token, w.expired_accessor = expiring["client_token"], expiring["accessor"]
        w.expires_at = time.time() + 3
        yield w
    finally:
        other.stop()
        try:
            root = hvac.Client(url=cluster.leader() or cluster.url, verify=cluster.ca_cert, token=cluster.root_token)
            root.sys.disable_secrets_engine(KV)
            root.adapter.delete("/v1/sys/policies/password/%s" % PWPOLICY)
        except Exception:  # noqa: BLE001 - best effort on a cluster that other tests share
            pass


# ---------------------------------------------------------------- state probes
def kv_tree(client):
    out = {}
    todo = ["apps"]
    while todo:
        folder = todo.pop()
        try:
            keys = client.secrets.kv.v2.list_secrets(folder, mount_point=KV)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            continue
        for key in keys:
            path = folder + "/" + key.rstrip("/")
            if key.endswith("/"):
                todo.append(path)
                continue
            meta = client.secrets.kv.v2.read_secret_metadata(path, mount_point=KV)["data"]
            out[path] = (meta["current_version"], sorted(meta["versions"]), meta.get("custom_metadata"))
    return out


def seal_of(url, ca_cert):
    body = requests.get(url + "/v1/sys/seal-status", verify=ca_cert, timeout=5).json()
    return dict((k, body.get(k)) for k in ("initialized", "sealed", "t", "n", "progress"))


def listing(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            info = os.stat(path)
            out[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns, oct(info.st_mode))
    return out


def accessors(w, root):
    """Live token accessors, without the one that expires on its own during the test."""
    keys = root.adapter.list("/v1/auth/token/accessors")["data"]["keys"]
    return sorted(k for k in keys if k != w.expired_accessor)


def differences(w, before, after):
    """The probes that changed. Tokens of other test modules may expire meanwhile: no token may appear, and this
    file's own long-lived token must still be there."""
    changed = [k for k in before if k != "tokens" and before[k] != after.get(k)]
    if not set(after["tokens"]) <= set(before["tokens"]) or w.weak_accessor not in after["tokens"]:
        changed.append("tokens")
    return changed


def vault_state(w):
    """Everything a bad-input case could change."""
    root = w.root()
    raft = root.sys.read_raft_config()["data"]["config"]["servers"]
    with open(w.cluster.init_file, "rb") as handle:
        init_digest = hashlib.sha256(handle.read()).hexdigest()
    return dict(
        policies=sorted(root.sys.list_acl_policies()["data"]["keys"]),
        password_policies=sorted((root.adapter.list("/v1/sys/policies/password") or {}).get("data", {}).get("keys", [])),
        mounts=dict((k, v["type"]) for k, v in root.sys.list_mounted_secrets_engines()["data"].items()),
        auth=dict((k, v["type"]) for k, v in root.sys.list_auth_methods()["data"].items()),
        audit=sorted((root.adapter.get("/v1/sys/audit").get("data") or {}).keys()),
        kv=kv_tree(root),
        raft=sorted((s["node_id"], s["voter"]) for s in raft),
        autopilot=root.adapter.get("/v1/sys/storage/raft/autopilot/configuration")["data"],
        keys=root.adapter.get("/v1/sys/key-status")["data"]["term"],
        tokens=accessors(w, root),
        seal=[seal_of(url, w.cluster.ca_cert) for url in w.cluster.urls],
        init_file=init_digest,
        other_seal=seal_of(w.other.url, w.other.ca_cert),
        files=listing(w.scratch),
    )


# ---------------------------------------------------------------- the table
def case(cid, module, args, expect, probe, check=False, secret=None):
    """``args(w)`` builds the module arguments; ``secret(w)`` names an input that must not be printed."""
    return pytest.param(dict(module=module, args=args, expect=expect, probe=probe, check=check, secret=secret), id=cid)


CASES = [
    # -- keys, tokens, TLS
    case("vault_unseal-wrong-unseal-key", "vault_unseal",
         lambda w: w.other.conn(auth_method="none", nodes=[], init_file=w.wrong_keys),
         ["rejected the unseal keys", "point init_file at this cluster's file"], "other_seal"),
    case("vault_unseal-missing-encrypted-key-file", "vault_unseal",
         lambda w: w.conn(auth_method="none", init_file=os.path.join(w.scratch, "missing.vault")),
         ["does not exist", "Point init_file at the file vault_init wrote"], "seal"),
    case("vault_init-wrong-ansible-vault-password", "vault_init",
         lambda w: w.conn(auth_method="none", init_file_password_file=w.wrong_pass),
         ["wrong vault password", "Use the ansible-vault password this file was written with"], "init_file"),
    case("vault_raft_snapshot-wrong-password-for-restore_init_file", "vault_raft_snapshot",
         lambda w: w.conn(state="restored", path=w.foreign_snapshot, force=True, restore_init_file=w.cluster.init_file,
                          restore_init_file_password_file=w.wrong_pass),
         ["wrong vault password", "Use the ansible-vault password this file was written with"], "kv", check=True),
    case("vault_policy-invalid-token", "vault_policy",
         lambda w: w.conn(auth_method="token", token=BOGUS_TOKEN, name="badinput-%s" % SFX, policy=GOOD_POLICY),
         ["permission denied", "Pass a valid token"], "policies", secret=lambda w: BOGUS_TOKEN),
    case("vault_kv_seed-expired-token", "vault_kv_seed",
         lambda w: w.conn(auth_method="token", token=w.expired(), mount=KV, secrets={"apps/new": {"k": "value-abc"}}),
         ["permission denied", "missing, expired or lacks a policy"], "kv", secret=lambda w: w.expired_token),
    case("vault_encryption_key-token-without-the-policy", "vault_encryption_key",
         lambda w: w.conn(auth_method="token", token=w.weak_token, force=True),
         ["permission denied", "needs sudo on sys/rotate", "with the policy this task needs"], "keys",
         secret=lambda w: w.weak_token),
    case("vault_mount-wrong-ca", "vault_mount",
         lambda w: w.conn(ca_cert=certifi.where(), path="kv-never-%s" % SFX, type="kv"),
         ["TLS verification failed", "Set ca_cert"], "mounts"),
    case("vault_status_info-hostname-not-in-certificate", "vault_status_info",
         lambda w: w.conn(url=w.cluster.url.replace("127.0.0.1", "127.1"), nodes=[]),  # 127.1 is 127.0.0.1, not a SAN
         ["TLS hostname mismatch", "127.1", "by a name in its certificate SANs"], "seal"),
    case("vault_revoke-url-without-scheme", "vault_revoke",
         lambda w: w.conn(url=w.cluster.url.replace("https://", ""), token_accessors=["x" * 24]),
         ["is not a URL with a scheme", "https://<host>:<port>"], "tokens"),
    case("vault_revoke-nothing-to-revoke", "vault_revoke",
         lambda w: w.conn(), ["give token_accessors and/or lease_prefixes"], "tokens"),
    # -- declared configuration
    case("vault_policy-unknown-capability", "vault_policy",
         lambda w: w.conn(policies={"badinput-ok-%s" % SFX: GOOD_POLICY,
                                    "badinput-bad-%s" % SFX: GOOD_POLICY.replace('"read"', '"reed"')}),
         ["does not parse", 'invalid capability "reed"', "nothing was changed"], "policies"),
    case("vault_mount-unknown-auth-type", "vault_mount",
         lambda w: w.conn(path="auth-never-%s" % SFX, kind="auth", type="no-such-auth"),
         ["plugin not found", "no-such-auth", "Fix the task's input"], "auth"),
    case("vault_audit-empty-path", "vault_audit",
         lambda w: w.conn(path="/", type="file", options=dict(file_path="audit/x.log")),
         ["path must name the audit device", "nothing was changed"], "audit"),
    case("vault_auth_kubernetes-ca-not-pem", "vault_auth_kubernetes",
         lambda w: w.conn(mount="k8s-never-%s" % SFX, kubernetes_host="https://k8s.example:443",
                          kubernetes_ca_cert="not a certificate"),
         ["is not a PEM certificate", "-----BEGIN CERTIFICATE-----", "nothing was changed"], "auth"),
    case("vault_raft-autopilot-bad-duration", "vault_raft",
         lambda w: w.conn(autopilot=dict(server_stabilization_time="soon")),
         ["not a duration: 'soon'", "use e.g. 10s", "nothing was changed"], "autopilot"),
    case("vault_rekey-threshold-above-shares", "vault_rekey",
         lambda w: w.conn(secret_shares=2, secret_threshold=3),
         ["secret_threshold must be between 2 and secret_shares", "nothing was changed"], "seal"),
    case("vault_eso_check-check-without-role", "vault_eso_check",
         lambda w: w.conn(checks=[dict(name="ClusterSecretStore/vault-dev")]),
         ["missing required arguments: role"], "policies"),
    # -- database credentials (the cases that need a PostgreSQL are in tests/integration/test_database_credentials.py)
    case("vault_database_connection-admin-source-missing", "vault_database_connection",
         lambda w: w.conn(mount="database-never-%s" % SFX, name="payments", username="vault_admin",
                          connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:5432/app?sslmode=disable",
                          admin_source=dict(store="file", file=os.path.join(w.scratch, "missing-admin.vault"),
                                            password_file=w.wrong_pass)),
         ["Cannot read the admin credential source", "Check admin_source.file", "nothing was changed"], "mounts"),
    case("vault_database_roles-engine-not-enabled", "vault_database_roles",
         lambda w: w.conn(mount="database-never-%s" % SFX, roles=[dict(
             name="app-ro", db_name="payments", creation_statements=['CREATE ROLE "{{name}}";'], max_ttl="1h")]),
         ["is not enabled", "enable the database secrets engine there first", "nothing was changed"], "mounts"),
    case("vault_database_rotate_root-bad-window", "vault_database_rotate_root",
         lambda w: w.conn(mount="database-never-%s" % SFX, window="soon"),
         ["not a duration: 'soon'", "nothing was rotated"], "mounts"),
    case("vault_database_credentials-count-zero", "vault_database_credentials",
         lambda w: w.conn(mount="database-never-%s" % SFX, database_role="app-ro", count=0),
         ["count and concurrency must be at least 1", "nothing was issued"], "mounts"),
    # -- secret data
    case("vault_kv_seed-null-field-value", "vault_kv_seed",
         lambda w: w.conn(mount=KV, prefix="apps", secrets={"apps/new": {"user": "app-user", "password": None}}),
         ["has no value for password", "'' for an empty string", "nothing was written"], "kv"),
    case("vault_kv_seed-unknown-password-policy", "vault_kv_seed",
         lambda w: w.conn(mount=KV, prefix="apps", secrets={"apps/new": {"k": "value-abc"}, "apps/gen": {"user": "gen-user"}},
                          generate={"apps/gen": {"password": "no-such-policy-%s" % SFX}}),
         ["password policies that do not exist", "no-such-policy-%s (for apps/gen.password)" % SFX,
          "configure.yml", "nothing was written"], "kv"),
    case("vault_kv_seed-mount-not-enabled", "vault_kv_seed",
         lambda w: w.conn(mount="kv-never-%s" % SFX, secrets={"apps/new": {"k": "value-abc"}}),
         ["path not found", "is the secrets engine or auth method enabled"], "mounts"),
    case("vault_kv_rotate-path-outside-prefix", "vault_kv_rotate",
         lambda w: w.conn(mount=KV, prefix="apps", force=True,
                          secrets={"apps/one": {"password": PWPOLICY}, "infra/root-ca": {"password": PWPOLICY}}),
         ["'infra/root-ca' is outside the allowed prefix 'apps'", "nothing was changed"], "kv"),
    case("vault_kv_rotate-unknown-password-policy", "vault_kv_rotate",
         lambda w: w.conn(mount=KV, force=True, secrets={
             "apps/one": {"password": PWPOLICY}, "apps/two": {"password": "no-such-policy-%s" % SFX}}),
         ["password policies that do not exist", "(for apps/two.password)", "nothing was rotated"], "kv"),
    case("vault_kv_metadata_info-dotdot-path", "vault_kv_metadata_info",
         lambda w: w.conn(mount=KV, prefix="apps", paths=["apps/one", "apps/../sys/raw"]),
         ["'apps/../sys/raw' has an empty, '.' or '..' segment", "Give paths relative to the mount under apps/",
          "nothing was read"], "kv"),
    # -- snapshots and files
    case("vault_raft_snapshot-restore-foreign-snapshot", "vault_raft_snapshot",
         lambda w: w.conn(state="restored", path=w.foreign_snapshot),
         ["another cluster", "set force=true and restore_init_file"], "kv"),
    case("vault_raft_snapshot-restore-empty-file", "vault_raft_snapshot",
         lambda w: w.conn(state="restored", path=w.empty_snapshot, force=True),
         ["is empty", "Take a new snapshot"], "kv"),
    case("vault_snapshot_retention-keep-last-zero", "vault_snapshot_retention",
         lambda w: dict(directory=w.scratch, keep_last=0),
         ["keep_last must be at least 1", "nothing was deleted"], "files"),
    case("vault_snapshot_retention-bad-max-age", "vault_snapshot_retention",
         lambda w: dict(directory=w.scratch, max_age="forever"),
         ["not a duration: 'forever'", "nothing was deleted"], "files"),
    case("vault_snapshot_s3-fetch-without-key", "vault_snapshot_s3",
         lambda w: dict(state="fetched", bucket="heracles-never", path=os.path.join(w.scratch, "fetched.snap")),
         ["state=fetched needs key or latest=true"], "files"),
    case("vault_audit_report-no-such-log", "vault_audit_report",
         lambda w: dict(paths=[os.path.join(w.scratch, "missing-audit.log")], dest=os.path.join(w.scratch, "r.json")),
         ["No audit log found", "Point paths at the file audit device's file_path"], "files"),
    case("eso_status_info-bad-controller-service-account", "eso_status_info",
         lambda w: dict(objects=[], controller_service_account="external-secrets"),
         ["controller_service_account must be namespace/name", "for example external-secrets/external-secrets"],
         "files"),
    case("eso_force_sync-name-without-namespace", "eso_force_sync",
         lambda w: dict(external_secrets=["payments-db"]),
         ["must be given as namespace/name", "for example payments/payments-db"], "files"),
    case("eso_rollout-workload-kind-it-cannot-restart", "eso_rollout",
         lambda w: dict(external_secrets=["payments/payments-db"], changed_at="2026-12-07T03:04:05Z",
                        workloads=[dict(namespace="payments", kind="CronJob", name="payments-report")]),
         ["kind 'CronJob' is not one of DaemonSet, Deployment, StatefulSet", "kubectl rollout restart",
          "nothing was changed"], "files"),
    case("local_cluster-port-out-of-range", "local_cluster",
         lambda w: dict(base_dir=os.path.join(w.scratch, "lc"), base_port=65530),
         ["needs ports 65530-65551", "choose another base_port"], "files"),
    case("local_cluster-bind-address-not-an-ip", "local_cluster",
         lambda w: dict(base_dir=os.path.join(w.scratch, "lc"), bind_address="localhost", base_port=20000),
         ["bind_address 'localhost' must be an IP address"], "files"),
    case("k8s_secrets_encryption_info-etcd-endpoint-without-scheme", "k8s_secrets_encryption_info",
         lambda w: dict(etcd_endpoints=["127.0.0.1:2379"]),
         ["'127.0.0.1:2379' is not a URL with a scheme", "https://<host>:2379", "nothing was read"], "files"),
    case("k8s_secrets_reencrypt-nothing-says-which-secrets", "k8s_secrets_reencrypt",
         lambda w: dict(namespaces=["payments"]),
         ["Nothing says which Secrets need a rewrite", "etcd_endpoints", "cluster_name", "force=true",
          "nothing was written"], "files"),
]


@pytest.mark.parametrize("spec", CASES)
def test_bad_input_fails_clearly_and_changes_nothing(world, spec):
    args = spec["args"](world)
    before = vault_state(world)
    assert spec["probe"] in before
    res = run_module(spec["module"], args, check=spec["check"])  # run_module fails the test if no JSON was printed
    after = vault_state(world)
    assert res.failed and res.rc != 0, res
    assert res.get("changed") is not True, res
    if "changed" in res:
        assert res["changed"] is False
    for words in spec["expect"]:
        assert words in res["msg"], "%r not in %r" % (words, res["msg"])
    assert "Traceback" not in res.stderr
    assert spec["probe"] not in differences(world, before, after), spec["probe"]
    assert differences(world, before, after) == []
    if spec["secret"]:
        assert find_leaks([spec["secret"](world)], [("stdout", res.stdout), ("stderr", res.stderr)]) == []


def test_every_module_has_a_bad_input_case():
    modules = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith(".py") and name != "__init__.py")
    covered = set(param.values[0]["module"] for param in CASES)
    assert [m for m in modules if m not in covered] == []


def test_revoking_an_unknown_accessor_warns_that_it_may_be_mistyped(world):
    """Vault answers the same for a revoked token and for an accessor that never existed: the module says both."""
    before = vault_state(world)
    res = run_module("vault_revoke", world.conn(token_accessors=["nosuchaccessor%s" % SFX]))
    assert not res.failed and res["changed"] is False and res["already_revoked_tokens"] == ["nosuchaccessor%s" % SFX]
    assert "mistyped" in str(res.get("warnings")) and "audit log" in str(res.get("warnings"))
    assert differences(world, before, vault_state(world)) == []
