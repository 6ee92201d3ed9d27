"""configure.yml and seed.yml on a real cluster, then least privilege per environment.

Kubernetes auth is real: Vault verifies service-account JWTs against the local TokenReview
endpoint (tests/lib/tokenreview.py). Developers and DevOps get tokens with their policies; the
platform's raft snapshot CronJob logs in as its service account and can take a snapshot, nothing else.
"""

import glob
import os

import hvac
import hvac.exceptions
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, files_text, find_leaks

pytestmark = pytest.mark.slow
ENVS = vault_data.environments(os.path.join(ROOT, "vault"))
APPS = ["payments", "orders"]
SEEDED = ["apps/payments/db", "apps/payments/stripe", "apps/orders/db", "apps/orders/redis"]


@pytest.fixture(scope="module")
def world(cluster, tokenreview, tmp_path_factory):
    state = tmp_path_factory.mktemp("configure")
    k8s = tokenreview.reviewer_config(state)
    runner = Runner(state, dict(heracles_vault_connection=connection_vars(cluster), configure_environments=ENVS,
                                seed_environments=ENVS, configure_kubernetes=dict((e, k8s) for e in ENVS)))
    return dict(runner=runner, cluster=cluster, tokenreview=tokenreview, state=str(state))


def kv_mounts(cluster):
    return [p for p in cluster.hvac().sys.list_mounted_secrets_engines()["data"] if p.startswith("kv-") and
            p.rstrip("/") in ("kv-%s" % e for e in ENVS)]


def seeded_versions(cluster):
    root = cluster.hvac()
    return dict(("%s:%s" % (env, path), root.secrets.kv.v2.read_secret_metadata(path, mount_point="kv-" + env)["data"]
                 ["current_version"]) for env in ENVS for path in SEEDED)


def seeded_values(cluster):
    root = cluster.hvac()
    values = []
    for env in ENVS:
        for path in SEEDED:
            data = root.secrets.kv.v2.read_secret_version(path, mount_point="kv-" + env,
                                                          raise_on_deleted_version=True)["data"]["data"]
            values += [v for k, v in data.items() if k in ("password", "api_key")]
    return values


def test_configure_check_mode_changes_nothing(world):
    proc = world["runner"].run("configure.yml", "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] > 0
    assert kv_mounts(world["cluster"]) == []


def test_configure_applies_then_reruns_clean(world):
    proc = world["runner"].run("configure.yml", "-vvv", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["changed"] > 0
    assert sorted(kv_mounts(world["cluster"])) == ["kv-dev/", "kv-prod/", "kv-staging/"]
    again = world["runner"].run("configure.yml")
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]


def test_seed_check_then_real_then_rerun_creates_no_versions(world):
    check = world["runner"].run("seed.yml", "--check", "--diff")
    assert check.returncode == 0 and recap(check)["changed"] == 3, check.stdout[-3000:]
    root = world["cluster"].hvac()
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_metadata("apps/payments/db", mount_point="kv-dev")
    proc = world["runner"].run("seed.yml", "-vvv", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "dev: created 4, updated 0, unchanged 0" in proc.stdout
    before = seeded_versions(world["cluster"])
    assert set(before.values()) == {1}
    again = world["runner"].run("seed.yml", "--diff")
    assert again.returncode == 0 and recap(again)["changed"] == 0
    assert "prod: created 0, updated 0, unchanged 4" in again.stdout
    assert seeded_versions(world["cluster"]) == before


def test_no_seeded_value_in_outputs_logs_or_audit(world):
    values = seeded_values(world["cluster"])
    assert len(values) == 12 and all(len(v) == 32 for v in values)
    outputs = world["runner"].outputs
    files = list(files_text(world["state"]))
    audit = [(p, open(p, errors="replace").read()) for p in
             glob.glob(os.path.join(world["cluster"].base_dir, "node*", "audit", "audit.log"))]
    assert audit and sum(len(t) for _p, t in audit) > 0
    assert find_leaks(values, outputs + files + audit) == []
    # the audit log does record the seed writes, HMAC'd
    hashed = world["cluster"].hvac().adapter.post("/v1/sys/audit-hash/file", json={"input": values[0]})["data"]["hash"]
    assert any(hashed in text for _p, text in audit)


# ---------------------------------------------------------------- least privilege
def client_for(cluster, token):
    return hvac.Client(url=cluster.leader(), verify=cluster.ca_cert, token=token)


def k8s_login(world, env, namespace, name, role):
    jwt = world["tokenreview"].mint(namespace, name, audiences=["vault"])
    client = hvac.Client(url=world["cluster"].leader(), verify=world["cluster"].ca_cert)
    client.auth.kubernetes.login(role, jwt, mount_point="kubernetes-" + env)
    return client


def token_with(world, policies):
    root = world["cluster"].hvac()
    token = root.auth.token.create(policies=policies, ttl="10m", no_default_policy=False)["auth"]["client_token"]
    return client_for(world["cluster"], token)


def can_read(client, env, path):
    try:
        client.secrets.kv.v2.read_secret_version(path, mount_point="kv-" + env, raise_on_deleted_version=True)
        return True
    except hvac.exceptions.Forbidden:
        return False


def can_write(client, env, path):
    try:
        client.secrets.kv.v2.create_or_update_secret(path, secret={"x": "y"}, mount_point="kv-" + env, cas=0)
        return True
    except hvac.exceptions.Forbidden:
        return False


def can(client, method, path, **kw):
    try:
        getattr(client.adapter, method)(path, **kw)
        return True
    except hvac.exceptions.Forbidden:
        return False


@pytest.mark.parametrize("env", ENVS)
def test_app_logs_in_and_reads_only_its_own_secrets(world, env):
    app = k8s_login(world, env, "payments", "payments", "payments")
    info = app.auth.token.lookup_self()["data"]
    assert sorted(info["policies"]) == ["default", "%s-app-payments" % env]
    assert can_read(app, env, "apps/payments/db")
    assert not can_read(app, env, "apps/orders/db")
    assert not can_write(app, env, "apps/payments/db-new")
    for other in ENVS:
        if other != env:
            assert not can_read(app, other, "apps/payments/db")
    assert not can(app, "list", "/v1/kv-%s/metadata/apps" % env)
    assert not can(app, "post", "/v1/sys/policies/acl/evil", json={"policy": 'path "*" {capabilities=["sudo"]}'})
    assert not can(app, "get", "/v1/sys/storage/raft/configuration")


@pytest.mark.parametrize("env", ENVS)
def test_service_account_from_another_namespace_is_refused(world, env):
    with pytest.raises(hvac.exceptions.VaultError):
        k8s_login(world, env, "orders", "payments", "payments")


@pytest.mark.parametrize("env", ENVS)
def test_eso_own_service_account_has_no_vault_role(world, env):
    # app SecretStores log in as their apps; ESO's identity reads nothing in Vault
    with pytest.raises(hvac.exceptions.VaultError):
        k8s_login(world, env, "external-secrets", "external-secrets", "external-secrets")


def declared_backup_role(env):
    """The snapshot job's role as vault/environments/<env>.yml declares it (what pulumi/platform's CronJob uses)."""
    desired = vault_data.load(os.path.join(ROOT, "vault"), [env])
    return [r for r in desired["auth"][0]["roles"] if r["name"] == vault_data.BACKUP_ROLE][0]


def backup_login(world, env, namespace, name):
    """Log in the way the CronJob does: a projected token with Vault's audience, role vault-backup."""
    jwt = world["tokenreview"].mint(namespace, name, audiences=["vault"])
    client = hvac.Client(url=world["cluster"].leader(), verify=world["cluster"].ca_cert)
    auth = client.auth.kubernetes.login(vault_data.BACKUP_ROLE, jwt, mount_point="kubernetes-" + env)["auth"]
    return client, auth


@pytest.mark.parametrize("env", ENVS)
def test_backup_job_takes_a_raft_snapshot_and_nothing_else(world, env):
    role = declared_backup_role(env)
    backup, auth = backup_login(world, env, role["bound_service_account_namespaces"][0],
                                role["bound_service_account_names"][0])
    assert auth["policies"] == ["%s-backup" % env]  # and not "default"
    assert auth["lease_duration"] == parse_duration(role["token_ttl"]) <= 300
    # the snapshot streams: a gzip'd archive, as `operator raft snapshot save` writes it
    response = backup.sys.take_raft_snapshot()
    try:
        assert response.status_code == 200
        head = response.raw.read(2)
    finally:
        response.close()
    assert head == b"\x1f\x8b"
    # nothing else: no secret, no policy, no raft configuration, not even its own token's lookup
    assert not can_read(backup, env, "apps/payments/db")
    assert not can(backup, "get", "/v1/sys/policy")
    assert not can(backup, "list", "/v1/sys/policies/acl")
    assert not can(backup, "get", "/v1/sys/policies/acl/%s-backup" % env)
    assert not can(backup, "get", "/v1/sys/storage/raft/configuration")
    assert not can(backup, "get", "/v1/auth/token/lookup-self")
    # and no restore: asked of the policy engine, never tried on the shared cluster
    paths = ["sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force", "sys/policies/acl/%s-backup" % env,
             "kv-%s/data/apps/payments/db" % env, "sys/storage/raft/snapshot-auto/config/nightly"]
    capabilities = world["cluster"].hvac().adapter.post(
        "/v1/sys/capabilities", json={"token": backup.token, "paths": paths})["data"]
    assert {path: capabilities[path] for path in paths} == dict(
        [(paths[0], ["read"])] + [(path, ["deny"]) for path in paths[1:]])


@pytest.mark.parametrize("namespace, name", [("vault", "vault"), ("default", "vault-backup"),
                                             ("payments", "payments")])
def test_only_the_backup_service_account_logs_in_as_the_backup_job(world, namespace, name):
    with pytest.raises(hvac.exceptions.VaultError):
        backup_login(world, "prod", namespace, name)


def test_developer_reads_dev_only_and_writes_nothing(world):
    dev = token_with(world, ["dev-developer"])
    assert can_read(dev, "dev", "apps/payments/db")
    assert can(dev, "list", "/v1/kv-dev/metadata/apps")
    assert not can_write(dev, "dev", "apps/payments/new")
    assert not can_read(dev, "staging", "apps/payments/db") and not can_read(dev, "prod", "apps/payments/db")
    assert not can(dev, "get", "/v1/sys/storage/raft/configuration")
    policies = world["cluster"].hvac().sys.list_acl_policies()["data"]["keys"]
    assert "dev-developer" in policies and "staging-developer" not in policies and "prod-developer" not in policies


def test_devops_reads_everything_changes_nothing(world):
    ops = token_with(world, ["%s-devops" % e for e in ENVS])
    assert all(can_read(ops, env, path) for env in ENVS for path in SEEDED)
    assert not any(can_write(ops, env, "apps/payments/new") for env in ENVS)
    assert can(ops, "get", "/v1/sys/storage/raft/configuration")
    assert not can(ops, "post", "/v1/sys/policies/acl/evil", json={"policy": 'path "*" {capabilities=["read"]}'})
    assert not can(ops, "post", "/v1/sys/mounts/evil", json={"type": "kv"})
    assert not can(ops, "delete", "/v1/sys/auth/kubernetes-prod")


def test_prod_requires_check_and_set_dev_does_not(world):
    root = world["cluster"].hvac()
    root.secrets.kv.v2.create_or_update_secret("apps/cas-probe", secret={"a": "b"}, mount_point="kv-dev")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.kv.v2.create_or_update_secret("apps/cas-probe", secret={"a": "b"}, mount_point="kv-prod")
    root.secrets.kv.v2.delete_metadata_and_all_versions("apps/cas-probe", mount_point="kv-dev")


@pytest.mark.parametrize("env", ENVS)
def test_rotation_job_writes_the_apps_fields_and_nothing_else(world, env):
    """The in-cluster rotation job's role (vault/environments/<env>.yml rotation:): new versions under apps/, its
    rotation stamps, no delete or destroy, no sys/, no other environment, no default policy."""
    job = vault_data.load_workloads(os.path.join(ROOT, "vault"), env)["rotation_job"]
    jwt = world["tokenreview"].mint(job["namespace"], job["service_account"], audiences=["vault"])
    client = hvac.Client(url=world["cluster"].leader(), verify=world["cluster"].ca_cert)
    auth = client.auth.kubernetes.login(job["role"], jwt, mount_point="kubernetes-" + env)["auth"]
    assert auth["policies"] == ["%s-rotator" % env]  # and not "default" (no capabilities-self, no lookup-self)
    kv = "kv-" + env
    root = world["cluster"].hvac()

    def caps(path):
        answer = root.adapter.post("/v1/sys/capabilities", json={"token": auth["client_token"], "paths": [path]})
        return sorted(answer["data"][path])

    assert caps("%s/data/apps/payments/db" % kv) == ["create", "read", "update"]
    assert caps("%s/metadata/apps/payments/db" % kv) == ["list", "read", "update"]
    for path in ("%s/destroy/apps/payments/db" % kv, "%s/delete/apps/payments/db" % kv, "sys/policies/acl/x",
                 "sys/rotate", "sys/storage/raft/snapshot", "%s/data/other/x" % kv):
        assert caps(path) == ["deny"], path
    for other in ENVS:
        if other != env:
            assert caps("kv-%s/data/apps/payments/db" % other) == ["deny"]
    # a real write with check-and-set, as vault_kv_rotate makes it; root removes the probe
    client.secrets.kv.v2.create_or_update_secret("apps/rotator-probe/x", secret={"v": "1"}, cas=0, mount_point=kv)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.delete_metadata_and_all_versions("apps/rotator-probe/x", mount_point=kv)
    root.secrets.kv.v2.delete_metadata_and_all_versions("apps/rotator-probe/x", mount_point=kv)
    # and a service account of another namespace cannot use the role
    with pytest.raises(hvac.exceptions.VaultError):
        k8s_login(world, env, "payments", job["service_account"], job["role"])
