"""vault_audit against real clusters.

OpenBao 2.7.2 refuses to create audit devices through the API unless its server configuration sets
``unsafe_allow_api_audit_creation = true`` (the fix for CVE-2025-54997 moved audit devices into
the configuration file). So:

* on the shared session ``cluster`` (default configuration) the module must fail clearly and
  change nothing, and bad input is refused before any call;
* the three-way cases, the HMAC check and recreation run on a cluster of their own whose nodes
  allow API-created devices.

The device writes to a relative ``file_path``: each node resolves it against its own working
directory (its node directory, which has an ``audit/`` directory), so every node has its own file.
"""

import json
import os
import secrets
import time

import hvac.exceptions
import pytest

from heracles_testlib import ClusterHandle, run_module

SUFFIX = secrets.token_hex(3)
DEVICE = "file-%s" % SUFFIX
LOG_NAME = "%s.log" % DEVICE
KV = "kv-audit-%s" % SUFFIX
ALLOW_API_AUDIT = "\nunsafe_allow_api_audit_creation = true\n"


def device_args(c, **kw):
    base = dict(path=DEVICE, type="file", description="primary audit log",
                options=dict(file_path="audit/" + LOG_NAME, mode="0600"))
    base.update(kw)
    return c.conn(**base)


def audit_devices(c):
    body = c.hvac().adapter.get("/v1/sys/audit")
    return body.get("data") or {}


def audit_hash(c, value):
    """``POST sys/audit-hash/<device>``: how the device HMACs ``value``."""
    return c.hvac().adapter.post("/v1/sys/audit-hash/%s" % DEVICE, json={"input": value})["data"]["hash"]


def log_paths(c):
    return [os.path.join(node.audit_dir, LOG_NAME) for node in c.lc.nodes]


def logs_text(c):
    text = ""
    for path in log_paths(c):
        if os.path.exists(path):
            with open(path) as handle:
                text += handle.read()
    return text


@pytest.fixture(scope="module")
def api_cluster(tmp_path_factory):
    """A bootstrapped 3-node cluster whose servers accept API-created audit devices."""
    handle = ClusterHandle(tmp_path_factory.mktemp("audit"))
    render = handle.lc.render_config

    def render_allowing_api_audit(node):
        return render(node) + ALLOW_API_AUDIT

    handle.lc.render_config = render_allowing_api_audit
    handle.start()
    try:
        handle.bootstrap()
        yield handle
    finally:
        handle.stop()


# -- the shared cluster: default OpenBao configuration -----------------------------------
def test_default_openbao_refuses_api_created_devices(cluster):
    before = audit_devices(cluster)
    res = run_module("vault_audit", device_args(cluster))
    assert res.failed
    assert "refuses API-created audit devices" in res["msg"], res["msg"]
    assert "unsafe_allow_api_audit_creation" in res["msg"] and 'audit "<type>" "<path>"' in res["msg"]
    assert audit_devices(cluster) == before


@pytest.mark.parametrize("override, expect", [
    (dict(type="nosuch"), "value of type must be one of: file, socket, syslog, got: nosuch"),
    (dict(options=dict(file_path="/tmp/x.log", log_raw=True)), "log_raw=true would write every secret"),
    (dict(options=dict(file_path="/tmp/x.log", log_raw="1")), "log_raw=1 would write every secret"),
    (dict(options=dict(mode="0600")), "needs options.file_path"),
    (dict(type="socket", options=dict(socket_type="tcp")), "needs options.address"),
    (dict(type=None), "state is present but all of the following are missing: type"),
], ids=["unknown-type", "log-raw", "log-raw-1", "no-file-path", "socket-no-address", "no-type"])
def test_bad_input_fails_clearly_and_changes_nothing(cluster, override, expect):
    before = audit_devices(cluster)
    args = device_args(cluster, **override)
    if args.get("type") is None:
        args.pop("type")
    res = run_module("vault_audit", args)
    assert res.failed
    assert expect in res["msg"], res["msg"]
    assert audit_devices(cluster) == before


# -- a cluster that allows API-created devices: three ways ----------------------------------
@pytest.mark.slow
def test_check_mode_enables_nothing(api_cluster):
    res = run_module("vault_audit", device_args(api_cluster), check=True, diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["recreated"] is False
    assert res["diff"]["before"] == {} and res["diff"]["after"]["options"]["file_path"] == "audit/" + LOG_NAME
    assert DEVICE + "/" not in audit_devices(api_cluster)
    assert not any(os.path.exists(p) for p in log_paths(api_cluster))


@pytest.mark.slow
def test_real_run_enables_a_relative_file_path_on_every_node(api_cluster):
    res = run_module("vault_audit", device_args(api_cluster), diff=True)
    assert not res.failed, res
    assert res["changed"] is True
    device = audit_devices(api_cluster)[DEVICE + "/"]
    assert device["type"] == "file" and device["options"] == {"file_path": "audit/" + LOG_NAME, "mode": "0600"}
    # Each server resolved the relative path against its own working directory (its node dir).
    assert all(os.path.exists(p) for p in log_paths(api_cluster)), log_paths(api_cluster)
    assert res["device"]["description"] == "primary audit log"


@pytest.mark.slow
def test_rerun_reports_no_change(api_cluster):
    res = run_module("vault_audit", device_args(api_cluster))
    assert not res.failed, res
    assert res["changed"] is False and res["differences"] == []
    res = run_module("vault_audit", device_args(api_cluster, options=dict(file_path="audit/" + LOG_NAME, mode="600")),
                     check=True)
    assert res["changed"] is False, "mode 600 and 0600 are the same mode"


@pytest.mark.slow
def test_secret_values_reach_the_log_only_hmacd(api_cluster):
    root = api_cluster.hvac()
    root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
    value = "canary-" + secrets.token_hex(16)
    deadline = time.time() + 30
    while True:
        try:
            root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": value}, mount_point=KV)
            break
        except hvac.exceptions.InvalidRequest:  # the new kv-v2 mount is still upgrading
            if time.time() > deadline:
                raise
            time.sleep(0.3)
    read = root.secrets.kv.v2.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)
    assert read["data"]["data"]["password"] == value
    expected_hash = audit_hash(api_cluster, value)
    assert expected_hash.startswith("hmac-sha256:")

    text = logs_text(api_cluster)
    assert '"path":"%s/data/app/db"' % KV in text
    assert value not in text, "the plain secret value is in the audit log"
    assert "hmac-sha256:" in text and expected_hash in text


@pytest.mark.slow
def test_difference_recreates_the_device_three_ways(api_cluster):
    changed = device_args(api_cluster, description="primary audit log (json)",
                          options=dict(file_path="audit/" + LOG_NAME, mode="0600", format="json"))
    res = run_module("vault_audit", changed, check=True, diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["recreated"] is True
    assert res["differences"] == ["description", "options.format"]
    assert "disabled and enabled again" in json.dumps(res.get("warnings", []))  # 2.19: structured warnings
    assert audit_devices(api_cluster)[DEVICE + "/"]["description"] == "primary audit log"
    salt_before = audit_hash(api_cluster, "x")

    res = run_module("vault_audit", changed)
    assert not res.failed, res
    assert res["changed"] is True and res["recreated"] is True
    device = audit_devices(api_cluster)[DEVICE + "/"]
    assert device["description"] == "primary audit log (json)" and device["options"]["format"] == "json"
    assert audit_hash(api_cluster, "x") != salt_before, "a recreated device has a new HMAC salt (as the warning says)"

    res = run_module("vault_audit", changed)
    assert res["changed"] is False and res["recreated"] is False


@pytest.mark.slow
def test_recreate_false_refuses_a_difference(api_cluster):
    before = audit_devices(api_cluster)
    res = run_module("vault_audit", device_args(api_cluster, recreate=False))
    assert res.failed
    assert "cannot change an audit device in place" in res["msg"] and "recreate=true" in res["msg"]
    assert audit_devices(api_cluster) == before


@pytest.mark.slow
def test_failed_re_enable_puts_the_old_device_back(api_cluster):
    before = audit_devices(api_cluster)
    res = run_module("vault_audit", device_args(api_cluster, type="socket",
                                                options=dict(address="127.0.0.1:1", socket_type="tcp")))
    assert res.failed
    assert "the old device was enabled again" in res["msg"], res["msg"]
    assert res["changed"] is False
    assert audit_devices(api_cluster) == before


@pytest.mark.slow
def test_log_raw_is_allowed_only_when_asked(api_cluster):
    raw = device_args(api_cluster, options=dict(file_path="audit/" + LOG_NAME, log_raw=True))
    res = run_module("vault_audit", raw, check=True)
    assert res.failed and "allow_log_raw=true" in res["msg"]
    res = run_module("vault_audit", dict(raw, allow_log_raw=True), check=True)
    assert not res.failed, res
    assert res["changed"] is True and "options.log_raw" in res["differences"]


@pytest.mark.slow
def test_state_absent_three_ways(api_cluster):
    args = api_cluster.conn(path=DEVICE, state="absent")
    res = run_module("vault_audit", args, check=True)
    assert res["changed"] is True and DEVICE + "/" in audit_devices(api_cluster)
    res = run_module("vault_audit", args)
    assert res["changed"] is True and res["device"] is None
    assert DEVICE + "/" not in audit_devices(api_cluster)
    res = run_module("vault_audit", args)
    assert not res.failed and res["changed"] is False
