"""rotate.yml and leak-response.yml on a real cluster: check mode, real run, rerun without change, no values."""

import json
import os
import re
import secrets
import shutil
import stat
import sys
import time

import hvac.exceptions
import pytest
import yaml

from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, find_leaks, run_module
from kubeapi import KubeApi
from ansible_collections.heracles.secrets.plugins.module_utils import eso, vault_data
from ansible_collections.heracles.secrets.plugins.module_utils import rollout as rotation

sys.path.insert(0, os.path.join(ROOT, "pulumi"))
from heracles_pulumi import delivery  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.slow
SEEDED = ["apps/payments/db", "apps/payments/stripe", "apps/orders/db", "apps/orders/redis"]
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
    assert not re.search(r"skipping: \[[^\]]+\] => \(item=dev ", again.stdout), again.stdout[-3000:]
    assert "dev consumers: not reached (no cluster named" in again.stdout
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


# -- rotation reaches the pods --------------------------------------------------------------------------------------
# A copy of vault/ that declares dev only, with a KV mount of its own (nothing else in the session touches it) and
# one consumer more (a DaemonSet), seeded, then every rotation stamp set 40 days back: the database and cache secrets
# (30d) are due, the API key (90d) is not. The cluster is tests/lib/kubeapi.py holding the ExternalSecrets
# pulumi/platform renders for those apps (heracles_pulumi.delivery), the declared consumers as Deployments,
# StatefulSets and DaemonSets, one ExternalSecret outside the data (billing/stripe), and ESO emulated: a changed
# force-sync annotation is reconciled 0.3 s later (refreshTime, Ready), or fails for those marked stuck.
ROLLOUT_KV = "kv-rollout-%s" % secrets.token_hex(3)
DAY = 86400
DB_ES = ["payments/payments-db", "orders/orders-db", "orders/orders-redis"]
ALL_ES = ["payments/payments-db", "payments/payments-stripe", "orders/orders-db", "orders/orders-redis"]
DB_WORKLOADS = ["payments/Deployment/payments-api", "orders/Deployment/orders-api", "orders/StatefulSet/orders-worker",
                "orders/DaemonSet/orders-agent"]
ALL_WORKLOADS = ["payments/Deployment/payments-api", "payments/Deployment/payments-webhooks", "orders/Deployment/orders-api",
                 "orders/StatefulSet/orders-worker", "orders/DaemonSet/orders-agent"]


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.fixture(scope="module")
def rollout(world, tmp_path_factory):
    """The copied data, its seeded mount (rotation stamps 40 days old) and a Runner pointed at both."""
    cluster = world["cluster"]  # world ran configure.yml: the heracles-strong password policy exists
    base = tmp_path_factory.mktemp("rollout")
    data = str(base / "vault")
    shutil.copytree(os.path.join(ROOT, "vault"), data)
    for env in ("staging", "prod"):
        os.remove(os.path.join(data, "environments", env + ".yml"))
        os.remove(os.path.join(data, "seed", env + ".yml"))
    env_file = os.path.join(data, "environments", "dev.yml")
    with open(env_file) as handle:
        text = handle.read()
    assert "path: kv-dev" in text and "consumers: [StatefulSet/orders-worker]" in text
    text = text.replace("path: kv-dev", "path: " + ROLLOUT_KV).replace(
        "consumers: [StatefulSet/orders-worker]", "consumers: [StatefulSet/orders-worker, DaemonSet/orders-agent]")
    with open(env_file, "w") as handle:
        handle.write(text)
    assert not run_module("vault_mount", cluster.conn(path=ROLLOUT_KV, type="kv", options={"version": "2"})).failed
    with open(os.path.join(data, "seed", "dev.yml")) as handle:
        seed = yaml.safe_load(handle)
    res = run_module("vault_kv_seed", cluster.conn(mount=ROLLOUT_KV, prefix="apps", secrets=seed["secrets"],
                                                   generate=seed["generate"]))
    assert not res.failed, res
    root = cluster.hvac()
    for path in seed["generate"]:
        custom = root.secrets.kv.v2.read_secret_metadata(path, mount_point=ROLLOUT_KV)["data"]["custom_metadata"] or {}
        custom["heracles_rotated_at"] = str(int(time.time()) - 40 * DAY)
        root.secrets.kv.v2.update_metadata(path, mount_point=ROLLOUT_KV, custom_metadata=custom)
    runner = Runner(base, dict(heracles_vault_connection=connection_vars(cluster), heracles_state_dir=str(base),
                               seed_environments=["dev"], rotate_data_dir=data, leak_data_dir=data,
                               rotate_encryption_key=False, rotate_sync_poll="0.2s", leak_sync_poll="0.2s",
                               rotate_sync_timeout="30s", leak_sync_timeout="30s"))
    return dict(cluster=cluster, runner=runner, state=str(base), declared=vault_data.load_workloads(data, "dev"),
                generated=sorted(seed["generate"]))


def workload(namespace, kind, name, secret_names, created):
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1", "generation": 1,
                         "creationTimestamp": created},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
                                  "spec": {"containers": [{"name": name, "image": "registry.example/%s:1" % name,
                                                           "envFrom": [{"secretRef": {"name": s}}
                                                                       for s in secret_names]}]}}}}


def synced_status(stamp):
    return {"refreshTime": stamp, "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                                                  "message": "secret synced", "lastTransitionTime": stamp}]}


@pytest.fixture()
def kube(rollout, tmp_path):
    """A cluster where every ExternalSecret refreshed, and every workload started, after every change so far."""
    stamp = rfc3339(time.time() + 1)  # whole seconds, as the API server and ESO write them: at or after the last change
    objects, consumers = [], {}
    for app in rollout["declared"]["apps"]:
        for secret in app["secrets"]:
            es = delivery.external_secret(app, secret, rollout["declared"])
            es["metadata"].update(resourceVersion="1", generation=1, creationTimestamp=stamp)
            es["status"] = synced_status(stamp)
            objects.append(es)
            for consumer in secret["consumers"]:
                consumers.setdefault((app["namespace"], consumer["kind"], consumer["name"]), []).append(secret["name"])
    objects += [workload(ns, kind, name, names, stamp) for (ns, kind, name), names in consumers.items()]
    objects.append({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": "stripe", "namespace": "billing", "resourceVersion": "1"},
                    "spec": {"refreshInterval": "15m", "secretStoreRef": {"kind": "SecretStore", "name": "vault"},
                             "data": [{"secretKey": "key", "remoteRef": {"key": "apps/payments/stripe",
                                                                         "property": "api_key"}}]},
                    "status": synced_status(stamp)})
    server = KubeApi(objects).emulate_eso(delay=0.3).start()
    server.config = server.kubeconfig(str(tmp_path / "kubeconfig"))
    try:
        yield server
    finally:
        server.stop()


def rollout_versions(cluster):
    root = cluster.hvac()
    return dict((p, root.secrets.kv.v2.read_secret_metadata(p, mount_point=ROLLOUT_KV)["data"]["current_version"])
                for p in SEEDED)


def rollout_values(cluster):
    """Every generated value at every live version (the needles of the leak scan)."""
    root, out = cluster.hvac(), []
    for path in SEEDED:
        versions = root.secrets.kv.v2.read_secret_metadata(path, mount_point=ROLLOUT_KV)["data"]["versions"]
        for number, info in versions.items():
            if not info["destroyed"]:
                data = root.secrets.kv.v2.read_secret_version(path, mount_point=ROLLOUT_KV, version=int(number),
                                                              raise_on_deleted_version=True)["data"]["data"]
                out += [v for k, v in data.items() if k in ("password", "api_key")]
    return out


def es_path(ref):
    namespace, name = ref.split("/")
    return "/apis/external-secrets.io/v1/namespaces/%s/externalsecrets/%s" % (namespace, name)


def workload_path(ref):
    namespace, kind, name = ref.split("/")
    return "/apis/apps/v1/namespaces/%s/%ss/%s" % (namespace, kind.lower(), name)


def patched(kube, start=0):
    """(path, content type) of every PATCH since request number ``start``."""
    return [(r["path"], r["content_type"]) for r in kube.patches()[start:]]


def restarted_at(kube, ref):
    namespace, kind, name = ref.split("/")
    return kube.find(kind, namespace, name)["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]


def status_of(kube, ref):
    namespace, name = ref.split("/")
    return kube.find("ExternalSecret", namespace, name)["status"]


def test_rotation_reaches_the_pods_check_real_rerun(rollout, kube):
    cluster, runner = rollout["cluster"], rollout["runner"]
    args = ("-e", "rotate_kubeconfig=" + kube.config)
    before = rollout_versions(cluster)

    check = runner.run("rotate.yml", "--check", *args)
    assert check.returncode == 0, check.stdout[-5000:]
    assert kube.patches() == [] and rollout_versions(cluster) == before
    assert "dev 30d (cache, database): would rotate apps/orders/db, apps/orders/redis, apps/payments/db; " \
           "in window: none" in check.stdout
    assert "dev 90d (api-key): would rotate none; in window: apps/payments/stripe" in check.stdout
    assert "dev consumers: would force-sync %s; would restart %s; up to date: payments/payments-stripe, " \
           "payments/Deployment/payments-webhooks" % (", ".join(DB_ES), ", ".join(DB_WORKLOADS)) in check.stdout, \
        check.stdout[-5000:]

    started = time.time()
    real = runner.run("rotate.yml", "-v", *args)
    assert real.returncode == 0, real.stdout[-5000:]
    after = rollout_versions(cluster)
    assert after == dict((p, v + (p != "apps/payments/stripe")) for p, v in before.items())  # the API key: 90d window
    # exactly: a merge patch per stale ExternalSecret, then -- once ESO refreshed them all -- one per workload
    assert patched(kube) == [(es_path(r), MERGE_PATCH) for r in DB_ES] + [(workload_path(r), MERGE_PATCH)
                                                                          for r in DB_WORKLOADS]
    for ref in DB_ES:
        namespace, name = ref.split("/")
        assert started - 1 <= int(kube.find("ExternalSecret", namespace, name)["metadata"]["annotations"]["force-sync"]) \
            <= time.time()
        assert status_of(kube, ref)["conditions"][-1]["status"] == "True"
    newest_refresh = max(eso.parse_time(status_of(kube, ref)["refreshTime"]) for ref in DB_ES)
    for ref in DB_WORKLOADS:
        assert eso.parse_time(restarted_at(kube, ref)) >= newest_refresh, ref
    assert "force-sync" not in (kube.find("ExternalSecret", "payments", "payments-stripe")["metadata"].get("annotations") or {})
    assert "annotations" not in kube.find("Deployment", "payments", "payments-webhooks")["spec"]["template"]["metadata"]
    assert "dev 30d (cache, database): rotated apps/orders/db, apps/orders/redis, apps/payments/db" in real.stdout
    assert "dev consumers: force-synced and refreshed %s; restarted %s" % (", ".join(DB_ES), ", ".join(DB_WORKLOADS)) \
        in real.stdout
    for ref in DB_ES:
        assert "ExternalSecret %s: force-synced (force-sync=" % ref in real.stdout
        assert re.search(r"ExternalSecret %s: ESO refreshed it at \S+, Ready \(waited \d+\.\d s\)" % re.escape(ref),
                         real.stdout), real.stdout[-5000:]
    assert "StatefulSet orders/orders-worker: restarted (restartedAt=" in real.stdout
    assert "DaemonSet orders/orders-agent: restarted (restartedAt=" in real.stdout
    assert "Deployment payments/payments-webhooks: up to date" in real.stdout

    count = len(kube.patches())
    again = runner.run("rotate.yml", *args)
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-5000:]
    assert len(kube.patches()) == count and rollout_versions(cluster) == after
    assert "dev consumers: force-synced and refreshed none; restarted none; up to date: %s" \
        % ", ".join(ALL_ES + ALL_WORKLOADS) in again.stdout
    assert find_leaks(rollout_values(cluster) + [kube.token], runner.outputs) == []


def test_eso_that_never_refreshes_fails_the_run_and_restarts_nothing_until_a_rerun(rollout, kube):
    cluster, runner = rollout["cluster"], rollout["runner"]
    kube.stuck.add("orders/orders-redis")
    before = rollout_versions(cluster)
    proc = runner.run("rotate.yml", "-e", "rotate_force=true", "-e", "rotate_sync_timeout=2s",
                      "-e", "rotate_kubeconfig=" + kube.config)
    assert proc.returncode != 0, proc.stdout[-5000:]
    assert re.search(r"ESO did not refresh ExternalSecret orders/orders-redis \(refreshTime \S+, change at \S+, not Ready: "
                     r"could not get secret data from provider\) within 2s of the force-sync; no workload was restarted\. "
                     r"Check that the ESO controller runs \(kubectl -n external-secrets logs deploy/external-secrets\) "
                     r"and kubectl -n orders describe externalsecret orders-redis", proc.stdout), proc.stdout[-5000:]
    assert rollout_versions(cluster) == dict((p, v + 1) for p, v in before.items())
    assert patched(kube) == [(es_path(r), MERGE_PATCH) for r in ALL_ES]  # synced, but no workload touched

    kube.stuck.clear()  # ESO works again: the next run rotates nothing and finishes the rollout
    count = len(kube.patches())
    again = runner.run("rotate.yml", "-e", "rotate_kubeconfig=" + kube.config)
    assert again.returncode == 0, again.stdout[-5000:]
    assert rollout_versions(cluster) == dict((p, v + 1) for p, v in before.items())
    assert patched(kube, count) == [(es_path("orders/orders-redis"), MERGE_PATCH)] + \
        [(workload_path(r), MERGE_PATCH) for r in ALL_WORKLOADS]
    assert "dev 30d (cache, database): rotated none" in again.stdout


def test_leak_response_rolls_the_new_value_out_to_its_consumers(rollout, kube):
    cluster, runner = rollout["cluster"], rollout["runner"]
    root = cluster.hvac()
    leaked = root.secrets.kv.v2.read_secret_version("apps/payments/stripe", mount_point=ROLLOUT_KV,
                                                    raise_on_deleted_version=True)["data"]
    args = ["-e", "leak_incident=INC-77", "-e", "leak_mount=" + ROLLOUT_KV, "-e", "leak_path=apps/payments/stripe",
            "-e", json.dumps(dict(leak_fields={"api_key": "heracles-strong"}, leak_kubeconfig=kube.config,
                                  leak_externalsecrets=["billing/stripe"]))]
    record_path = os.path.join(rollout["state"], "incidents", "INC-77.json")
    synced = ["payments/payments-stripe", "billing/stripe"]
    restarted = ["payments/Deployment/payments-api", "payments/Deployment/payments-webhooks"]

    check = runner.run("leak-response.yml", "--check", *args)
    assert check.returncode == 0, check.stdout[-5000:]
    assert kube.patches() == [] and not os.path.exists(record_path)
    assert "consumers: would force-sync %s; would restart %s" % (", ".join(synced), ", ".join(restarted)) in check.stdout

    real = runner.run("leak-response.yml", "-v", *args)
    assert real.returncode == 0, real.stdout[-5000:]
    now = root.secrets.kv.v2.read_secret_version("apps/payments/stripe", mount_point=ROLLOUT_KV,
                                                 raise_on_deleted_version=True)["data"]
    assert now["metadata"]["version"] == leaked["metadata"]["version"] + 1
    assert patched(kube) == [(es_path(r), MERGE_PATCH) for r in synced] + [(workload_path(r), MERGE_PATCH)
                                                                           for r in restarted]
    assert "consumers: force-synced and refreshed %s; restarted %s" % (", ".join(synced), ", ".join(restarted)) \
        in real.stdout
    with open(record_path) as handle:
        record = json.load(handle)
    assert record["externalsecrets_synced"] == synced and record["workloads_restarted"] == restarted
    assert record["consumers_declared"] == ["payments/payments-stripe"] + restarted
    assert record["next_steps"] == ["review the audit log for the leak window (audit-report.yml)"]

    again = runner.run("leak-response.yml", *args)
    assert again.returncode == 0 and recap(again)["changed"] == 0 and "already handled" in again.stdout
    assert len(kube.patches()) == len(synced) + len(restarted)
    assert find_leaks([leaked["data"]["api_key"], now["data"]["api_key"], kube.token], runner.outputs) == []


def test_missing_consumers_and_unknown_environments_stop_the_runbooks_before_any_change(rollout, kube):
    cluster, runner = rollout["cluster"], rollout["runner"]
    kube.objects.remove(kube.find("Deployment", "payments", "payments-webhooks"))
    before = rollout_versions(cluster)
    expect = "Not found: ExternalSecret billing/nope, Deployment payments/payments-webhooks. Check the names"
    proc = runner.run("rotate.yml", "-e", "rotate_force=true", "-e", json.dumps(dict(
        rotate_kubeconfig=kube.config, rotate_externalsecrets=["billing/nope"])))
    assert proc.returncode != 0 and expect in proc.stdout, proc.stdout[-5000:]

    proc = runner.run("leak-response.yml", "-e", "leak_incident=INC-78", "-e", "leak_mount=" + ROLLOUT_KV,
                      "-e", "leak_path=apps/payments/stripe", "-e", json.dumps(dict(
                          leak_fields={"api_key": "heracles-strong"}, leak_kubeconfig=kube.config,
                          leak_externalsecrets=["billing/nope"])))
    assert proc.returncode != 0 and expect in proc.stdout, proc.stdout[-5000:]
    assert not os.path.exists(os.path.join(rollout["state"], "incidents", "INC-78.json"))

    proc = runner.run("rotate.yml", "-e", '{"seed_environments": ["dev", "qa"]}', "-e", "rotate_force=true")
    assert proc.returncode != 0 and "rotate_environments names qa, which" in proc.stdout, proc.stdout[-5000:]
    assert "does not declare (declared: dev)" in proc.stdout
    assert rollout_versions(cluster) == before and kube.patches() == []


def test_kv_metadata_info_says_when_each_secret_changed_and_never_its_value(rollout):
    cluster = rollout["cluster"]
    args = cluster.conn(mount=ROLLOUT_KV, prefix="apps", paths=SEEDED + ["apps/none/x"])
    for check in (True, False):
        res = run_module("vault_kv_metadata_info", args, check=check)
        assert not res.failed and res["changed"] is False and res["missing"] == ["apps/none/x"], res
        for path in SEEDED:
            meta = cluster.hvac().secrets.kv.v2.read_secret_metadata(path, mount_point=ROLLOUT_KV)["data"]
            current = meta["versions"][str(meta["current_version"])]
            assert res["secrets"][path]["current_version"] == meta["current_version"]
            assert res["secrets"][path]["created_time"] == current["created_time"]
            assert res["changed_at"][path] == rotation.changed_epoch(current["created_time"])
            assert eso.parse_time(current["created_time"]) <= res["changed_at"][path] <= eso.parse_time(current["created_time"]) + 1
        assert find_leaks(rollout_values(cluster), [("stdout", res.stdout), ("stderr", res.stderr)]) == []
