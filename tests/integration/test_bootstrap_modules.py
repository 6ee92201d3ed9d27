"""vault_init, vault_unseal, vault_raft and vault_status_info against a new real cluster.

The cases run in file order on one uninitialised cluster: each module three ways
(check mode, real run, rerun -> no change), then the refusals.
"""

import json
import os
import stat

import pytest

from heracles_testlib import files_text, find_leaks, keystore, run_module


def conn(c, **kw):
    return c.conn(auth_method="none", **kw)


def test_status_of_uninitialised_cluster(fresh_cluster):
    res = run_module("vault_status_info", conn(fresh_cluster))
    assert not res.failed, res
    assert res["initialized"] is False
    assert res["leader"] is None
    assert [n["reachable"] for n in res["nodes"]] == [True, True, True]
    assert len(res["sealed_nodes"]) == 3


def test_unseal_before_init_fails_clearly(fresh_cluster, tmp_path):
    store = keystore.FileStore(str(tmp_path / "other.vault"), fresh_cluster.password)
    store.write(dict(version=1, unseal_keys_b64=["AAAA"], root_token="x"))
    res = run_module("vault_unseal", conn(fresh_cluster, init_file=str(tmp_path / "other.vault")))
    assert res.failed
    assert "No node is initialised" in res["msg"] and "bootstrap.yml" in res["msg"]


def test_init_refuses_existing_material_and_changes_nothing(fresh_cluster, tmp_path):
    existing = tmp_path / "existing.vault"
    keystore.FileStore(str(existing), fresh_cluster.password).write(dict(version=1, root_token="keep-me"))
    before = existing.read_bytes()
    res = run_module("vault_init", conn(fresh_cluster, init_file=str(existing)))
    assert res.failed
    assert "already holds init material" in res["msg"] and "overwrite_init_file" in res["msg"]
    assert existing.read_bytes() == before
    assert run_module("vault_status_info", conn(fresh_cluster))["initialized"] is False


def test_init_bad_threshold_fails_before_anything(fresh_cluster):
    res = run_module("vault_init", conn(fresh_cluster, secret_shares=2, secret_threshold=3))
    assert res.failed and "threshold" in res["msg"]
    assert not os.path.exists(fresh_cluster.init_file)


def test_init_check_mode_changes_nothing(fresh_cluster):
    res = run_module("vault_init", conn(fresh_cluster, secret_shares=3, secret_threshold=2), check=True)
    assert not res.failed, res
    assert res["changed"] is True and res["initialized"] is False
    assert not os.path.exists(fresh_cluster.init_file)
    assert run_module("vault_status_info", conn(fresh_cluster))["initialized"] is False


def test_init_writes_keys_only_encrypted(fresh_cluster):
    res = run_module("vault_init", conn(fresh_cluster, secret_shares=3, secret_threshold=2))
    assert not res.failed, res
    assert res["changed"] is True and res["initialized"] is True
    assert "keys" not in res and "root_token" not in res
    mode = stat.S_IMODE(os.stat(fresh_cluster.init_file).st_mode)
    assert mode == 0o600
    material = fresh_cluster.init_material()
    assert len(material["unseal_keys_b64"]) == 3 and material["threshold"] == 2
    secrets = material["unseal_keys_b64"] + [material["root_token"]]
    assert not find_leaks(secrets, [("stdout", res.stdout), ("stderr", res.stderr)])
    with open(fresh_cluster.init_file) as handle:
        assert handle.read().startswith("$ANSIBLE_VAULT;1.1;AES256")


def test_init_rerun_reports_no_change(fresh_cluster):
    before = open(fresh_cluster.init_file, "rb").read()
    res = run_module("vault_init", conn(fresh_cluster))
    assert not res.failed, res
    assert res["changed"] is False and res["initialized"] is True and res["init_store_exists"] is True
    assert open(fresh_cluster.init_file, "rb").read() == before


def test_unseal_with_wrong_keys_fails_and_stays_sealed(fresh_cluster, tmp_path):
    import base64
    wrong = tmp_path / "wrong.vault"
    fake = [base64.b64encode(os.urandom(33)).decode() for dummy in range(3)]
    keystore.FileStore(str(wrong), fresh_cluster.password).write(dict(version=1, unseal_keys_b64=fake))
    res = run_module("vault_unseal", conn(fresh_cluster, init_file=str(wrong), url=fresh_cluster.url, nodes=[]))
    assert res.failed
    assert "rejected the unseal keys" in res["msg"] or "still sealed" in res["msg"], res["msg"]
    assert not find_leaks(fake, [("stdout", res.stdout), ("stderr", res.stderr)])
    status = run_module("vault_status_info", conn(fresh_cluster, scope="node"))
    assert status["sealed_nodes"] == [fresh_cluster.url]


def test_unseal_wrong_password_is_clear(fresh_cluster, tmp_path):
    bad = tmp_path / "bad-pass"
    bad.write_text("not-the-password\n")
    res = run_module("vault_unseal", conn(fresh_cluster, init_file_password_file=str(bad)))
    assert res.failed and "wrong vault password" in res["msg"]


def test_unseal_check_mode_submits_nothing(fresh_cluster):
    res = run_module("vault_unseal", conn(fresh_cluster), check=True)
    assert not res.failed, res
    assert res["changed"] is True and len(res["unsealed"]) == 3
    status = run_module("vault_status_info", conn(fresh_cluster))
    assert len(status["sealed_nodes"]) == 3
    assert all(n["progress"] == 0 for n in status["nodes"])


def test_unseal_all_nodes(fresh_cluster):
    res = run_module("vault_unseal", conn(fresh_cluster))
    assert not res.failed, res
    assert res["changed"] is True and res["still_sealed"] == []
    assert [n["after"] for n in res["nodes"]] == ["unsealed"] * 3
    material = fresh_cluster.init_material()
    assert not find_leaks(material["unseal_keys_b64"] + [material["root_token"]],
                          [("stdout", res.stdout), ("stderr", res.stderr)])


def test_unseal_rerun_reports_no_change(fresh_cluster):
    res = run_module("vault_unseal", conn(fresh_cluster))
    assert not res.failed, res
    assert res["changed"] is False and res["unsealed"] == []


@pytest.mark.parametrize("check", [True, False])
def test_autopilot_check_then_apply(fresh_cluster, check):
    want = dict(server_stabilization_time="3s", last_contact_threshold="10s")
    before = run_module("vault_raft", fresh_cluster.conn(), check=True)
    res = run_module("vault_raft", fresh_cluster.conn(autopilot=want), check=check, diff=True)
    assert not res.failed, res
    assert res["changed"] is True
    assert res["diff"]["after"]["autopilot"]["server_stabilization_time"] == "3s"
    after = run_module("vault_raft", fresh_cluster.conn(), check=True)
    if check:
        assert after["autopilot_config"] == before["autopilot_config"]
    else:
        assert after["autopilot_config"]["server_stabilization_time"] == "3s"


def test_autopilot_rerun_and_equal_durations(fresh_cluster):
    res = run_module("vault_raft", fresh_cluster.conn(autopilot=dict(server_stabilization_time="3000ms")))
    assert not res.failed, res
    assert res["changed"] is False


def test_autopilot_unsafe_cleanup_refused(fresh_cluster):
    res = run_module("vault_raft", fresh_cluster.conn(autopilot=dict(cleanup_dead_servers=True, min_quorum=1)))
    assert res.failed and "min_quorum >= 3" in res["msg"]
    assert run_module("vault_raft", fresh_cluster.conn())["autopilot_config"]["cleanup_dead_servers"] is False


def test_three_voters_and_status(fresh_cluster):
    status = fresh_cluster.wait_voters(3)
    assert status["voters"] == ["node1", "node2", "node3"]
    assert status["leader"] in fresh_cluster.urls
    assert status["sealed_nodes"] == [] and status["unreachable_nodes"] == []
    assert sum(1 for n in status["nodes"] if n["active"]) == 1
    assert status["autopilot"]["failure_tolerance"] == 1


def test_join_already_member_is_no_change(fresh_cluster):
    res = run_module("vault_raft", fresh_cluster.conn(state="present", node_id="node2", node_url=fresh_cluster.urls[1]))
    assert not res.failed, res
    assert res["changed"] is False


def test_remove_healthy_peer_refused_without_force(fresh_cluster):
    res = run_module("vault_raft", fresh_cluster.conn(state="absent", node_id="node3"))
    assert res.failed and "force=true" in res["msg"]
    assert "node3" in run_module("vault_status_info", fresh_cluster.conn())["voters"]


def test_remove_leader_refused(fresh_cluster):
    status = run_module("vault_status_info", fresh_cluster.conn())
    leader_id = [p["node_id"] for p in status["peers"] if p["leader"]][0]
    res = run_module("vault_raft", fresh_cluster.conn(state="absent", node_id=leader_id, force=True))
    assert res.failed and "leader" in res["msg"]


def test_remove_absent_peer_is_no_change(fresh_cluster):
    res = run_module("vault_raft", fresh_cluster.conn(state="absent", node_id="node-that-never-was"))
    assert not res.failed and res["changed"] is False


def test_no_key_material_in_clear_on_disk(fresh_cluster):
    material = fresh_cluster.init_material()
    needles = material["unseal_keys_b64"] + [material["root_token"]]
    hits = find_leaks(needles, files_text(fresh_cluster.base_dir))
    assert hits == [], hits
    # and the search itself works: the decrypted JSON would be found
    assert find_leaks(needles, [("probe", json.dumps(material))])
