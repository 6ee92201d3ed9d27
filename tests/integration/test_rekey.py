"""vault_rekey on a real 3-node OpenBao cluster of its own (the keys change, so no other test may share it).

Order matters (file order): refusals and check mode first (nothing may change), then the real rekey, a
restarted node unsealed with the NEW material, the rerun within max_age, a rekey someone else left in
progress, an interrupted rekey of this module finished on the rerun. A second, one-node cluster with the
unauthenticated endpoints enabled covers the sys/rekey API (HashiCorp Vault and OpenBao before 2.4).

Whether a set of keys is valid is proven without sealing anything: start a rekey with verification,
submit the keys -- the server completes the first phase only when they reconstruct the root key -- and
cancel it (``keys_valid``).
"""

import base64
import glob
import os
import secrets
import stat
import time

import pytest
import requests

from heracles_testlib import ClusterHandle, find_leaks, run_module
from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.modules.vault_rekey import new_payload

pytestmark = pytest.mark.slow
SEEN_KEYS = set()


@pytest.fixture(scope="module")
def rk(tmp_path_factory):
    handle = ClusterHandle(tmp_path_factory.mktemp("rekey")).start()
    try:
        handle.bootstrap()
        SEEN_KEYS.update(keystore.unseal_keys(handle.init_material()))
        yield handle
    finally:
        handle.stop()


def api(cluster, method, path, token=None, **kw):
    headers = {"X-Vault-Token": token or cluster.root_token}
    resp = requests.request(method, cluster.leader() + "/v1/" + path, headers=headers, verify=cluster.ca_cert,
                            timeout=10, **kw)
    return resp


def progress(cluster, base="sys/rotate/root"):
    body = api(cluster, "GET", base + "/init").json()
    return body.get("data") or body


def keys_valid(cluster, keys, threshold, base="sys/rotate/root", write="POST"):
    """True when ``keys`` reconstruct the cluster's root key (a rekey started with verification, then cancelled)."""
    assert not progress(cluster, base).get("started")
    start = dict(secret_shares=1, secret_threshold=1, require_verification=True)
    body = api(cluster, write, base + "/init", json=start).json()
    nonce = (body.get("data") or body)["nonce"]
    try:
        for key in keys[:threshold]:
            resp = api(cluster, write, base + "/update", json=dict(key=key, nonce=nonce))
            if resp.status_code != 200:
                return False
            data = resp.json().get("data") or resp.json()
            if data.get("complete"):
                return True
        return False
    finally:
        api(cluster, "DELETE", base + "/init")


def seal(cluster):
    return requests.get(cluster.leader() + "/v1/sys/seal-status", verify=cluster.ca_cert, timeout=5).json()


def file_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def backups(cluster):
    return sorted(glob.glob(cluster.init_file + ".*.bak"))


def no_keys_in(res):
    return find_leaks(sorted(SEEN_KEYS), [("stdout", res.stdout), ("stderr", res.stderr)]) == []


# -- nothing due, check mode, refusals ---------------------------------------------------------
def test_fresh_keys_are_not_due_three_ways(rk):
    before = file_bytes(rk.init_file)
    for check in (True, False):
        res = run_module("vault_rekey", rk.conn(), check=check)
        assert not res.failed, res
        assert res["changed"] is False and res["due"] is False and res["reasons"] == []
        assert res["api"] == "rotate" and res["keys_age_days"] < 1
    assert file_bytes(rk.init_file) == before and backups(rk) == []


def test_check_mode_reports_a_due_rekey_and_changes_nothing(rk):
    before = file_bytes(rk.init_file)
    res = run_module("vault_rekey", rk.conn(force=True, secret_shares=5, secret_threshold=3), check=True)
    assert not res.failed, res
    assert res["changed"] is True and res["due"] is True and res["verified"] is False
    assert res["reasons"] == ["force=true", "shares/threshold 3/2 -> 5/3"]
    assert (res["shares_before"], res["threshold_before"], res["shares"], res["threshold"]) == (3, 2, 5, 3)
    assert file_bytes(rk.init_file) == before and backups(rk) == []
    assert not progress(rk).get("started") and (seal(rk)["n"], seal(rk)["t"]) == (3, 2)
    assert no_keys_in(res)


@pytest.mark.parametrize("args, expect", [
    (dict(secret_shares=3, secret_threshold=4), "between 2 and secret_shares"),
    (dict(secret_shares=3, secret_threshold=1), "between 2 and secret_shares"),
    (dict(recovery=True), "set recovery=false"),
    (dict(max_age="ninety days"), "max_age"),
], ids=["threshold-above-shares", "threshold-one-of-many", "recovery-on-shamir", "bad-max-age"])
def test_bad_input_is_refused_before_anything(rk, args, expect):
    before = file_bytes(rk.init_file)
    res = run_module("vault_rekey", rk.conn(force=True, **args))
    assert res.failed and expect in res["msg"], res
    assert file_bytes(rk.init_file) == before and not progress(rk).get("started")


def test_wrong_current_keys_fail_clearly_and_change_nothing(rk, tmp_path):
    material = rk.init_material()
    wrong = dict(material, unseal_keys_b64=[base64.b64encode(secrets.token_bytes(32) + bytes([i + 1])).decode()
                                            for i in range(3)])
    path = str(tmp_path / "other-cluster.vault")
    keystore.FileStore(path, rk.password).write(wrong)
    SEEN_KEYS.update(wrong["unseal_keys_b64"])
    before = file_bytes(path)
    res = run_module("vault_rekey", rk.conn(init_file=path, force=True))
    assert res.failed and res["changed"] is False, res
    assert "rejected the current keys" in res["msg"] and "point init_file at the right material" in res["msg"]
    assert "The rekey was cancelled" in res["msg"] and "the old keys stay valid" in res["msg"]
    assert file_bytes(path) == before and glob.glob(path + ".*.bak") == []
    assert not progress(rk).get("started")
    assert seal(rk)["sealed"] is False and (seal(rk)["n"], seal(rk)["t"]) == (3, 2)
    assert keys_valid(rk, material["unseal_keys_b64"], 2)
    assert no_keys_in(res)


# -- the real rekey ------------------------------------------------------------------------------
def test_rekey_stores_new_keys_keeps_a_backup_and_switches(rk):
    old = rk.init_material()
    old_bytes = file_bytes(rk.init_file)
    started = time.time()
    res = run_module("vault_rekey", rk.conn(force=True, secret_shares=5, secret_threshold=3))
    assert not res.failed, res
    assert time.time() - started < 30
    assert res["changed"] is True and res["verified"] is True and res["api"] == "rotate"
    assert (res["shares"], res["threshold"]) == (5, 3) and res["cancelled_in_progress"] is False
    new = rk.init_material()
    SEEN_KEYS.update(new["unseal_keys_b64"])
    assert len(new["unseal_keys_b64"]) == 5 and not set(new["unseal_keys_b64"]) & set(old["unseal_keys_b64"])
    assert (new["shares"], new["threshold"]) == (5, 3)
    assert new["root_token"] == old["root_token"] and new["created_at"] == old["created_at"]
    assert new["rekeyed_at"] == res["rekeyed_at"] and new["previous_backup"] == res["backup"]
    # the old material: a 0600 copy of the encrypted file, same password
    assert backups(rk) == [res["backup"]]
    assert stat.S_IMODE(os.stat(res["backup"]).st_mode) == 0o600
    assert file_bytes(res["backup"]) == old_bytes
    assert keystore.FileStore(res["backup"], rk.password).read()["unseal_keys_b64"] == old["unseal_keys_b64"]
    assert stat.S_IMODE(os.stat(rk.init_file).st_mode) == 0o600
    # the server switched: 5/3, new keys valid, old ones not, still unsealed
    status = seal(rk)
    assert (status["n"], status["t"], status["sealed"]) == (5, 3, False)
    assert keys_valid(rk, new["unseal_keys_b64"], 3)
    assert not keys_valid(rk, old["unseal_keys_b64"], 3)
    assert no_keys_in(res)


def test_restarted_node_unseals_with_the_new_material(rk):
    follower = [n for n in rk.lc.nodes if n.api_addr != rk.leader()][0]
    rk.lc.stop_node(follower)
    rk.lc.start_node(follower)
    node_seal = requests.get(follower.api_addr + "/v1/sys/seal-status", verify=rk.ca_cert, timeout=5).json()
    assert node_seal["sealed"] is True and node_seal["t"] == 3
    res = run_module("vault_unseal", rk.conn(auth_method="none"))
    assert not res.failed, res
    assert res["unsealed"] == [follower.api_addr] and res["still_sealed"] == []
    assert no_keys_in(res)
    rk.wait_voters(3)


def test_rerun_within_max_age_changes_nothing(rk):
    before = file_bytes(rk.init_file)
    for args in (dict(), dict(secret_shares=5, secret_threshold=3), dict(max_age="1d")):
        res = run_module("vault_rekey", rk.conn(**args))
        assert not res.failed and res["changed"] is False and res["due"] is False, res
        assert res["keys_age_days"] < 1
    assert file_bytes(rk.init_file) == before and len(backups(rk)) == 1


def test_old_keys_are_due_by_max_age(rk):
    res = run_module("vault_rekey", rk.conn(max_age=1), check=True)
    assert res["changed"] is True and res["reasons"][0].startswith("keys are 0 days old (max_age 1)")


# -- a rekey left in progress -------------------------------------------------------------------------
def test_someone_elses_rekey_in_progress_is_cancelled_first(rk):
    body = api(rk, "POST", "sys/rotate/root/init", json=dict(secret_shares=2, secret_threshold=2)).json()
    foreign = body["data"]["nonce"]
    res = run_module("vault_rekey", rk.conn())
    assert not res.failed and res["changed"] is False, res  # not due: left alone, with a warning
    assert "in progress" in str(res.get("warnings")), res
    assert progress(rk)["nonce"] == foreign
    res = run_module("vault_rekey", rk.conn(force=True), check=True)
    assert res["changed"] is True and res["cancelled_in_progress"] is True
    assert progress(rk)["nonce"] == foreign
    res = run_module("vault_rekey", rk.conn(force=True))
    assert not res.failed and res["verified"] is True and res["cancelled_in_progress"] is True, res
    new = rk.init_material()
    SEEN_KEYS.update(new["unseal_keys_b64"])
    assert not progress(rk).get("started") and (seal(rk)["n"], seal(rk)["t"]) == (5, 3)
    assert keys_valid(rk, new["unseal_keys_b64"], 3)
    assert no_keys_in(res)


def test_an_interrupted_rekey_is_finished_on_the_rerun(rk):
    """The module stored the new keys and died before verifying: the rerun verifies the stored keys."""
    old = rk.init_material()
    start = dict(secret_shares=4, secret_threshold=2, require_verification=True)
    body = api(rk, "POST", "sys/rotate/root/init", json=start).json()
    nonce = body["data"]["nonce"]
    for key in old["unseal_keys_b64"][:3]:
        data = api(rk, "POST", "sys/rotate/root/update", json=dict(key=key, nonce=nonce)).json()["data"]
    assert data["complete"] and data["verification_nonce"]
    SEEN_KEYS.update(data["keys_base64"])
    pending = new_payload(old, False, data["keys_base64"], 4, 2, nonce, "(test)", "2026-01-01T00:00:00+00:00")
    keystore.FileStore(rk.init_file, rk.password).write(pending, overwrite=True)
    res = run_module("vault_rekey", rk.conn(), check=True)
    assert res["changed"] is True and res["resumed"] is True and res["verified"] is False
    assert progress(rk)["nonce"] == nonce
    res = run_module("vault_rekey", rk.conn())
    assert not res.failed and res["resumed"] is True and res["verified"] is True, res
    assert (seal(rk)["n"], seal(rk)["t"]) == (4, 2) and not progress(rk).get("started")
    assert keys_valid(rk, data["keys_base64"], 2)
    assert no_keys_in(res)


def test_material_in_secrets_manager_keeps_the_old_version(rk, aws_env):
    """moto in server mode: the old material stays readable as AWSPREVIOUS, the new one is AWSCURRENT."""
    name = "heracles/rekey-%s/vault-init" % secrets.token_hex(3)
    sm = dict(init_store="aws_secretsmanager", aws_secret_name=name, aws_endpoint_url=aws_env, aws_region="us-east-1")
    store = keystore.AwsSecretsManagerStore(name, region="us-east-1", endpoint_url=aws_env)
    old = rk.init_material()
    store.write(old)
    res = run_module("vault_rekey", rk.conn(force=True, **sm))
    assert not res.failed and res["verified"] is True, res
    assert res["backup"].startswith("secretsmanager:%s version " % name) and "AWSPREVIOUS" in res["backup"]
    previous = store.client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"]
    assert keystore.unseal_keys(keystore._load(previous, name)) == old["unseal_keys_b64"]
    new = store.read()
    SEEN_KEYS.update(new["unseal_keys_b64"])
    assert new["unseal_keys_b64"] != old["unseal_keys_b64"] and keys_valid(rk, new["unseal_keys_b64"], 3)
    assert no_keys_in(res)
    keystore.FileStore(rk.init_file, rk.password).write(new, overwrite=True)  # later tests read the file


# -- the sys/rekey API (HashiCorp Vault, OpenBao < 2.4) ------------------------------------------------
@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    handle = ClusterHandle(tmp_path_factory.mktemp("rekey-legacy"), node_count=1)
    render = handle.lc.render_config

    def with_unauthed_rekey(node):
        return render(node).replace('  tls_min_version = "tls12"\n',
                                    '  tls_min_version = "tls12"\n  disable_unauthed_rekey_endpoints = false\n')

    handle.lc.render_config = with_unauthed_rekey
    handle.start()
    try:
        handle.bootstrap(voters=1)
        yield handle
    finally:
        handle.stop()


def test_rekey_through_the_sys_rekey_api(legacy):
    old = legacy.init_material()
    SEEN_KEYS.update(old["unseal_keys_b64"])
    res = run_module("vault_rekey", legacy.conn(api="rekey", force=True, secret_shares=4, secret_threshold=3))
    assert not res.failed, res
    assert res["api"] == "rekey" and res["verified"] is True and (res["shares"], res["threshold"]) == (4, 3)
    new = legacy.init_material()
    SEEN_KEYS.update(new["unseal_keys_b64"])
    assert (seal(legacy)["n"], seal(legacy)["t"]) == (4, 3)
    assert keys_valid(legacy, new["unseal_keys_b64"], 3, base="sys/rekey", write="PUT")
    assert not keys_valid(legacy, old["unseal_keys_b64"], 3, base="sys/rekey", write="PUT")
    assert no_keys_in(res)
    res = run_module("vault_rekey", legacy.conn(api="rekey"))
    assert not res.failed and res["changed"] is False


def test_disabled_sys_rekey_api_fails_clearly(rk):
    """OpenBao 2.7 answers 405 on sys/rekey by default: api=rekey says so instead of a bare 405."""
    res = run_module("vault_rekey", rk.conn(api="rekey", force=True))
    assert res.failed and res["changed"] is False
    assert "unsupported operation" in res["msg"] and "use api=auto" in res["msg"], res["msg"]
