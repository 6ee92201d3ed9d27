"""rotate.yml and leak-response.yml on a real cluster: check mode, real run, rerun without change, no values."""

import json
import os
import stat

import hvac.exceptions
import pytest

from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import find_leaks, run_module

pytestmark = pytest.mark.slow
SEEDED = ["apps/payments/db", "apps/payments/stripe", "apps/orders/db", "apps/orders/redis"]


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
