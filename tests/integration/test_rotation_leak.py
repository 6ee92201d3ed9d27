"""rotate.yml and leak-response.yml on a real cluster: check mode, real run, rerun without change, no values."""

import json
import os
import re
import stat
import time

import hvac.exceptions
import pytest
import yaml

from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, find_leaks, run_module
from kubeapi import KubeApi
from ansible_collections.heracles.secrets.plugins.module_utils import eso

pytestmark = pytest.mark.slow
SEEDED = ["apps/payments/db", "apps/payments/stripe", "apps/orders/db", "apps/orders/redis"]
RECORDED = os.path.join(ROOT, "tests", "data", "eso", "objects.yml")
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture(scope="module")
def world(cluster, tmp_path_factory):
    state = tmp_path_factory.mktemp("rotate")
    runner = Runner(state, dict(heracles_vault_connection=connection_vars(cluster), configure_environments=["dev"],
                                seed_environments=["dev"], heracles_state_dir=str(state)))
    for playbook in ("configure.yml", "seed.yml"):
        proc = runner.run(playbook)
        assert proc.returncode == 0, proc.stdout[-3000:]
    return dict(runner=runner, cluster=cluster, state=str(state))


def read(cluster, path, version=None):
    return cluster.hvac().secrets.kv.v2.read_secret_version(path, mount_point="kv-dev", version=version,
                                                            raise_on_deleted_version=True)["data"]


def values(cluster):
    out = []
    for path in SEEDED:
        versions = cluster.hvac().secrets.kv.v2.read_secret_metadata(path, mount_point="kv-dev")["data"]["versions"]
        for number, info in versions.items():
            if not info["destroyed"]:
                data = read(cluster, path, int(number))["data"]
                out += [v for k, v in data.items() if k in ("password", "api_key")]
    return out


def test_rotate_check_real_rerun(world):
    before = dict((p, read(world["cluster"], p)) for p in SEEDED)
    check = world["runner"].run("rotate.yml", "--check", "--diff", "-e", "rotate_encryption_key=false")
    assert check.returncode == 0, check.stdout[-3000:]
    assert recap(check)["changed"] >= 1
    assert dict((p, read(world["cluster"], p)) for p in SEEDED) == before
    real = world["runner"].run("rotate.yml", "-vvv", "--diff", "-e", "rotate_encryption_key=false")
    assert real.returncode == 0, real.stdout[-3000:]
    after = dict((p, read(world["cluster"], p)) for p in SEEDED)
    for path in SEEDED:
        assert after[path]["metadata"]["version"] == before[path]["metadata"]["version"] + 1
        assert after[path]["data"] != before[path]["data"]
        old = read(world["cluster"], path, before[path]["metadata"]["version"])["data"]
        assert old == before[path]["data"]  # the previous version stays readable
    assert after["apps/payments/db"]["data"]["username"] == before["apps/payments/db"]["data"]["username"]
    again = world["runner"].run("rotate.yml", "-e", "rotate_encryption_key=false")
    assert again.returncode == 0 and recap(again)["changed"] == 0
    assert "in window: 4 secret(s) left alone" in again.stdout
    # a result key named `skipped` would make Ansible show the rotation task itself as skipped
    assert not re.search(r"skipping: \[[^\]]+\] => \(item=dev\)", again.stdout), again.stdout[-3000:]
    assert "ESO force-synced: none" in again.stdout
    assert dict((p, read(world["cluster"], p)["metadata"]["version"]) for p in SEEDED) == \
        dict((p, after[p]["metadata"]["version"]) for p in SEEDED)
    assert find_leaks(values(world["cluster"]), world["runner"].outputs) == []


def test_rotate_forced_and_encryption_key(world):
    version = read(world["cluster"], "apps/orders/db")["metadata"]["version"]
    proc = world["runner"].run("rotate.yml", "-e", "rotate_force=true")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert read(world["cluster"], "apps/orders/db")["metadata"]["version"] == version + 1
    assert "barrier key term:" in proc.stdout and "(was" in proc.stdout


def test_leak_response_needs_its_inputs(world):
    proc = world["runner"].run("leak-response.yml", "-e", "leak_mount=kv-dev")
    assert proc.returncode != 0 and "Say what leaked" in proc.stdout


def test_leak_response_check_real_rerun(world):
    cluster = world["cluster"]
    root = cluster.hvac()
    root.sys.create_or_update_policy("leaker", 'path "kv-dev/data/apps/payments/*" { capabilities = ["read"] }')
    stolen = root.auth.token.create(policies=["leaker"], ttl="1h")["auth"]
    thief = hvac.Client(url=cluster.leader(), verify=cluster.ca_cert, token=stolen["client_token"])
    leaked = thief.secrets.kv.v2.read_secret_version("apps/payments/db", mount_point="kv-dev",
                                                     raise_on_deleted_version=True)["data"]
    args = ["-e", "leak_incident=INC-42", "-e", "leak_mount=kv-dev", "-e", "leak_path=apps/payments/db",
            "-e", json.dumps({"leak_token_accessors": [stolen["accessor"]]})]
    check = world["runner"].run("leak-response.yml", "--check", *args)
    assert check.returncode == 0, check.stdout[-3000:]
    assert read(cluster, "apps/payments/db")["metadata"]["version"] == leaked["metadata"]["version"]
    assert thief.auth.token.lookup_self()["data"]["accessor"] == stolen["accessor"]

    real = world["runner"].run("leak-response.yml", "-vvv", *args)
    assert real.returncode == 0, real.stdout[-4000:]
    with pytest.raises(hvac.exceptions.Forbidden):
        thief.auth.token.lookup_self()
    now = read(cluster, "apps/payments/db")
    assert now["metadata"]["version"] == leaked["metadata"]["version"] + 1
    assert now["data"]["password"] != leaked["data"]["password"]
    meta = root.secrets.kv.v2.read_secret_metadata("apps/payments/db", mount_point="kv-dev")["data"]["versions"]
    assert all(info["destroyed"] for number, info in meta.items() if int(number) < now["metadata"]["version"])
    record_path = os.path.join(world["state"], "incidents", "INC-42.json")
    assert stat.S_IMODE(os.stat(record_path).st_mode) == 0o600
    record = json.load(open(record_path))
    assert record["status"] == "complete" and record["secret"] == "kv-dev/apps/payments/db"
    assert record["tokens_revoked"] == [stolen["accessor"]] and leaked["metadata"]["version"] in record["versions_destroyed"]
    assert record["externalsecrets_synced"] == []  # none given: the record keeps the step for the operator
    assert "force ESO to resync the dependent Kubernetes Secrets (eso-sync.yml -e eso_force_sync=true)" in record["next_steps"]
    text = open(record_path).read()
    assert leaked["data"]["password"] not in text and now["data"]["password"] not in text
    assert find_leaks([leaked["data"]["password"], now["data"]["password"], stolen["client_token"]],
                      world["runner"].outputs) == []

    again = world["runner"].run("leak-response.yml", *args)
    assert again.returncode == 0 and recap(again)["changed"] == 0
    assert "already handled" in again.stdout
    assert read(cluster, "apps/payments/db")["metadata"]["version"] == now["metadata"]["version"]


def test_kv_rotate_refuses_missing_secret_and_bad_versions(world):
    cluster = world["cluster"]
    res = run_module("vault_kv_rotate", cluster.conn(mount="kv-dev", secrets={"apps/none/x": {"password": "heracles-strong"}}))
    assert res.failed and "seed it first" in res["msg"]
    args = cluster.conn(mount="kv-dev", secrets={"apps/orders/db": {"password": "heracles-strong"}}, destroy_versions=["latest"])
    res = run_module("vault_kv_rotate", args)
    assert res.failed and "version numbers or 'previous'" in res["msg"]


# -- force-sync of the ExternalSecrets fed by the rotated secrets (tests/lib/kubeapi.py: the API the official client
# talks to, holding the recorded ExternalSecrets of tests/data/eso). Last: they rotate with force again.
@pytest.fixture()
def kube(tmp_path):
    with open(RECORDED) as handle:
        objects = eso.flatten(list(yaml.safe_load_all(handle)))
    server = KubeApi([obj for obj in objects if obj.get("kind") == "ExternalSecret"]).start()
    server.config = server.kubeconfig(str(tmp_path / "kubeconfig"))
    try:
        yield server
    finally:
        server.stop()


def versions(cluster):
    return dict((p, read(cluster, p)["metadata"]["version"]) for p in SEEDED)


def es_path(ref):
    namespace, name = ref.split("/")
    return "/apis/external-secrets.io/v1/namespaces/%s/externalsecrets/%s" % (namespace, name)


def assert_force_synced(kube, refs):
    """Exactly one merge patch per ref, in order, each leaving force-sync=<a unix time of the last minutes>."""
    assert [(p["path"], p["content_type"]) for p in kube.patches()] == [(es_path(ref), MERGE_PATCH) for ref in refs]
    for ref in refs:
        namespace, name = ref.split("/")
        stamp = kube.find("ExternalSecret", namespace, name)["metadata"]["annotations"]["force-sync"]
        assert abs(int(stamp) - time.time()) < 300, (ref, stamp)


def test_rotate_force_syncs_the_given_externalsecrets(world, kube):
    cluster = world["cluster"]
    targets = ["payments/payments-db", "billing/stripe"]
    args = ("-e", "rotate_encryption_key=false",
            "-e", json.dumps(dict(rotate_externalsecrets=targets, rotate_kubeconfig=kube.config)))
    before = versions(cluster)
    check = world["runner"].run("rotate.yml", "--check", "--diff", "-e", "rotate_force=true", *args)
    assert check.returncode == 0 and recap(check)["changed"] >= 1, check.stdout[-4000:]
    assert "ESO force-synced: payments/payments-db, billing/stripe (check mode: would)" in check.stdout
    assert kube.patches() == [] and versions(cluster) == before

    real = world["runner"].run("rotate.yml", "-vvv", "-e", "rotate_force=true", *args)
    assert real.returncode == 0, real.stdout[-4000:]
    assert versions(cluster) == dict((p, v + 1) for p, v in before.items())
    assert_force_synced(kube, targets)
    assert kube.find("ExternalSecret", "billing", "stripe")["spec"]["refreshInterval"] == "15m"  # merged, not replaced
    assert "force-sync" not in (kube.find("ExternalSecret", "orders", "orders-db")["metadata"].get("annotations") or {})
    assert "ESO force-synced: payments/payments-db, billing/stripe" in real.stdout

    again = world["runner"].run("rotate.yml", *args)  # inside the window: nothing rotated, nothing annotated
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-4000:]
    assert "ESO force-synced: none" in again.stdout and len(kube.patches()) == 2
    assert versions(cluster) == dict((p, v + 1) for p, v in before.items())
    assert find_leaks(values(cluster) + [kube.token], world["runner"].outputs) == []


def test_leak_response_force_syncs_and_records_them(world, kube):
    cluster = world["cluster"]
    targets = ["orders/orders-db"]
    args = ["-e", "leak_incident=INC-43", "-e", "leak_mount=kv-dev", "-e", "leak_path=apps/orders/db",
            "-e", json.dumps(dict(leak_externalsecrets=targets, leak_kubeconfig=kube.config))]
    record_path = os.path.join(world["state"], "incidents", "INC-43.json")
    leaked = read(cluster, "apps/orders/db")
    check = world["runner"].run("leak-response.yml", "--check", *args)
    assert check.returncode == 0, check.stdout[-4000:]
    assert kube.patches() == [] and not os.path.exists(record_path)
    assert read(cluster, "apps/orders/db")["metadata"]["version"] == leaked["metadata"]["version"]

    real = world["runner"].run("leak-response.yml", "-vvv", *args)
    assert real.returncode == 0, real.stdout[-4000:]
    now = read(cluster, "apps/orders/db")
    assert now["metadata"]["version"] == leaked["metadata"]["version"] + 1
    assert_force_synced(kube, targets)
    assert "ESO force-synced: orders/orders-db" in real.stdout
    record = json.load(open(record_path))
    assert record["status"] == "complete" and record["externalsecrets_synced"] == targets
    assert not any("eso-sync.yml" in step for step in record["next_steps"])  # done by the playbook
    assert "restart consumers that cache the value" in record["next_steps"]

    again = world["runner"].run("leak-response.yml", *args)
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-4000:]
    assert "already handled" in again.stdout and len(kube.patches()) == 1
    assert read(cluster, "apps/orders/db")["metadata"]["version"] == now["metadata"]["version"]
    assert find_leaks([leaked["data"]["password"], now["data"]["password"], kube.token], world["runner"].outputs) == []


def test_a_missing_externalsecret_stops_both_runbooks_before_any_change(world, kube):
    cluster = world["cluster"]
    targets = ["billing/stripe", "billing/nope"]
    expect = "ExternalSecret(s) not found: billing/nope. Check namespace/name (kubectl get externalsecrets -A)"
    before = versions(cluster)
    proc = world["runner"].run("rotate.yml", "-e", "rotate_force=true", "-e", "rotate_encryption_key=false",
                               "-e", json.dumps(dict(rotate_externalsecrets=targets, rotate_kubeconfig=kube.config)))
    assert proc.returncode != 0 and expect in proc.stdout, proc.stdout[-4000:]
    assert versions(cluster) == before

    proc = world["runner"].run("leak-response.yml", "-e", "leak_incident=INC-44", "-e", "leak_mount=kv-dev",
                               "-e", "leak_path=apps/payments/stripe",
                               "-e", json.dumps(dict(leak_fields={"api_key": "heracles-strong"},
                                                     leak_externalsecrets=targets, leak_kubeconfig=kube.config)))
    assert proc.returncode != 0 and expect in proc.stdout, proc.stdout[-4000:]
    assert versions(cluster) == before
    assert not os.path.exists(os.path.join(world["state"], "incidents", "INC-44.json"))
    assert kube.patches() == []
