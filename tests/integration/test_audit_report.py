"""playbooks/audit-report.yml on the real audit logs of a cluster of its own.

Traffic in a known window: the root token writes a secret, a policy (through a standby, which forwards it) and
an app token; the app token reads one allowed and one denied path. The report must count exactly that, name the denied request and the root use,
and never contain the secret value or a token -- in the JSON file, the summary file or the playbook output.
Three ways: --check writes nothing, the real run writes both files (0600 in a 0700 directory), the rerun over
the same fixed window changes nothing.
"""

import datetime
import json
import os
import secrets
import stat
import time

import hvac
import hvac.exceptions
import pytest

from heracles_playbook import Runner, recap
from heracles_testlib import ClusterHandle

pytestmark = pytest.mark.slow

KV = "kv-audit"
APP = "audit-web"


def iso_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A cluster of its own, and the known requests made on it between ``since`` and ``until``."""
    c = ClusterHandle(tmp_path_factory.mktemp("auditrep")).start()
    try:
        c.bootstrap()
        leader = c.leader()
        root = c.hvac(url=leader)
        root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
        for dummy in range(50):  # a new kv-v2 mount answers 400 "upgrading" for a moment
            try:
                root.secrets.kv.v2.create_or_update_secret("warmup", secret={"v": "1"}, mount_point=KV)
                break
            except hvac.exceptions.InvalidRequest:
                time.sleep(0.2)
        time.sleep(0.05)
        since = iso_now()
        value = "audit-secret-" + secrets.token_hex(16)
        root.secrets.kv.v2.create_or_update_secret("apps/web/db", secret={"password": value}, mount_point=KV)
        # Sent to a standby: it logs the write, fails it (read-only storage) and forwards it to the active node,
        # which logs it again under another request id.
        standby = c.hvac(url=[u for u in c.urls if u != leader][0])
        standby.sys.create_or_update_policy(APP, 'path "%s/data/apps/web/*" { capabilities = ["read"] }' % KV)
        app_token = root.auth.token.create(policies=[APP], display_name=APP, meta={"app": "web"})["auth"]["client_token"]
        app = hvac.Client(url=leader, verify=c.ca_cert, token=app_token)
        read = app.secrets.kv.v2.read_secret_version("apps/web/db", mount_point=KV, raise_on_deleted_version=True)
        assert read["data"]["data"]["password"] == value
        with pytest.raises(hvac.exceptions.Forbidden):
            app.secrets.kv.v2.read_secret_version("apps/other/db", mount_point=KV, raise_on_deleted_version=True)
        time.sleep(0.05)
        until = iso_now()
        # How the audit device HMACs the value (sys/audit-hash; after `until`, as it is audited itself).
        value_hmac = root.adapter.post("/v1/sys/audit-hash/file", json={"input": value})["data"]["hash"]
        yield dict(value_hmac=value_hmac, cluster=c, since=since, until=until, value=value, app_token=app_token, root_token=c.root_token)
    finally:
        c.stop()


@pytest.fixture(scope="module")
def run(traffic, tmp_path_factory):
    state = tmp_path_factory.mktemp("auditrep-run")
    out = os.path.join(str(state), "reports")
    runner = Runner(state, dict(audit_report_paths=[os.path.join(traffic["cluster"].base_dir, "node*", "audit", "audit.log")],
                                audit_report_since=traffic["since"], audit_report_until=traffic["until"],
                                audit_report_dir=out))
    return dict(runner=runner, out=out, json=os.path.join(out, "audit-report.json"), txt=os.path.join(out, "audit-report.txt"))


def test_check_mode_reads_and_writes_nothing(run):
    proc = run["runner"].run("audit-report.yml", "--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] >= 1
    assert "denied:      1" in proc.stdout
    assert not os.path.exists(run["out"])


def test_real_run_counts_the_traffic(run, traffic):
    proc = run["runner"].run("audit-report.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 2  # the directory and the report files
    assert stat.S_IMODE(os.stat(run["out"]).st_mode) == 0o700
    for path in (run["json"], run["txt"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(run["json"]) as handle:
        rep = json.load(handle)
    assert len(rep["files"]) == 3 and rep["unparseable_lines"] == 0
    assert rep["requests"] == 5 and rep["forwarded"] == 1, rep["access"]
    # all counted from the active node's log: the standby's entry is `forwarded`, the other standby saw nothing
    assert sorted(f["requests"] for f in rep["files"]) == [0, 0, 5]
    assert sum(f["lines"] for f in rep["files"] if f["requests"] == 0) == 2
    assert rep["operations"] == {"create": 1, "read": 2, "update": 2}
    idents = dict((i["identity"], i) for i in rep["identities"])
    app = idents["token-" + APP]
    assert (app["requests"], app["denied"], app["policies"], app["metadata"]) == (2, 1, [APP, "default"], {"app": "web"})
    assert app["accessors"] and all(a.startswith("hmac-sha256:") for a in app["accessors"])
    assert idents["root"]["requests"] == 3 and idents["root"]["denied"] == 0
    assert rep["denied"]["count"] == 1
    denied = rep["denied"]["entries"][0]
    assert (denied["identity"], denied["path"], denied["operation"]) == ("token-" + APP, KV + "/data/apps/other/db", "read")
    assert rep["root"] == dict(count=3, identities=["root"], entries=rep["root"]["entries"], entries_not_listed=0,
                               paths={"auth/token/create": 1, "sys/policy/" + APP: 1, KV + "/data/apps/web/db": 1})
    access = dict(((a["identity"], a["path"]), a["requests"]) for a in rep["access"])
    assert access[("token-" + APP, KV + "/data/apps/web/db")] == 1 and access[("root", KV + "/data/apps/web/db")] == 1
    assert traffic["since"] <= rep["first"] <= rep["last"] <= traffic["until"]
    with open(run["txt"]) as handle:
        summary = handle.read()
    assert "denied:      1" in summary and "root token:  3 request(s) by root" in summary
    assert "token-%s read %s/data/apps/other/db" % (APP, KV) in summary and "token-%s read" % APP in proc.stdout


def test_rerun_over_the_same_window_changes_nothing(run):
    proc = run["runner"].run("audit-report.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 0


def test_no_value_or_token_in_report_files_or_output(run, traffic):
    haystacks = list(run["runner"].outputs)
    for path in (run["json"], run["txt"]):
        with open(path) as handle:
            haystacks.append((path, handle.read()))
    logs = ""
    for node in traffic["cluster"].lc.nodes:
        with open(os.path.join(node.audit_dir, "audit.log")) as handle:
            logs += handle.read()
    # The audit log holds the value only HMAC'd; the report does not even hold the HMAC (bodies are not read).
    assert traffic["value_hmac"].startswith("hmac-sha256:") and traffic["value_hmac"] in logs
    assert traffic["value"] not in logs
    needles = [traffic["value"], traffic["value_hmac"], traffic["app_token"], traffic["root_token"]]
    assert len(haystacks) == 5
    for where, text in haystacks:
        for needle in needles:
            assert needle not in text, (needle[:6], where)
