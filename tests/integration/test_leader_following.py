"""The shared client against a real cluster: standby, stopped node, leader loss, quorum loss, TLS.

Uses a cluster of its own (``own_cluster``) because it kills nodes.
"""

import json
import time

import pytest

from heracles_testlib import ClusterHandle, run_module

pytestmark = pytest.mark.slow


def standby_urls(c):
    leader = c.leader()
    return [u for u in c.urls if u != leader]


def node_for(c, url):
    return [n for n in c.lc.nodes if n.api_addr == url][0]


def test_pointed_at_a_standby_goes_to_the_leader(own_cluster):
    standby = standby_urls(own_cluster)[0]
    res = run_module("vault_raft", own_cluster.conn(url=standby, nodes=[]))
    assert not res.failed, res
    assert res["vault_endpoint"] == own_cluster.leader()
    assert res["leader_changes"] and res["leader_changes"][0]["from"] == standby


def test_follow_leader_off_stays_on_the_standby(own_cluster):
    standby = standby_urls(own_cluster)[0]
    res = run_module("vault_raft", own_cluster.conn(url=standby, nodes=[], follow_leader=False))
    assert not res.failed, res  # the standby forwards the request
    assert res["vault_endpoint"] == standby and res["leader_changes"] == []


def test_pointed_at_a_stopped_node_uses_the_others(own_cluster):
    victim = standby_urls(own_cluster)[0]
    own_cluster.lc.stop_node(node_for(own_cluster, victim))
    try:
        others = [u for u in own_cluster.urls if u != victim]
        res = run_module("vault_raft", own_cluster.conn(url=victim, nodes=others))
        assert not res.failed, res
        assert res["vault_endpoint"] == own_cluster.leader()
        status = run_module("vault_status_info", own_cluster.conn(url=victim, nodes=others))
        assert status["unreachable_nodes"] == [victim]
        assert status["leader"] == own_cluster.leader()
    finally:
        own_cluster.lc.start_node(node_for(own_cluster, victim))
    res = run_module("vault_unseal", own_cluster.conn())
    assert not res.failed and res["unsealed"] == [victim], res
    own_cluster.wait_voters(3)


def test_leader_killed_then_modules_follow_the_new_one(own_cluster):
    old = own_cluster.leader()
    victim = node_for(own_cluster, old)
    own_cluster.lc.kill_node(victim)
    try:
        started = time.time()
        # Pointed at the dead leader first: the client must find the new one through `nodes`. The production
        # retry budget (retry_delay 1 s), not the tests' short one: an election on a loaded CI host takes seconds.
        res = run_module("vault_raft", own_cluster.conn(url=old, nodes=[u for u in own_cluster.urls if u != old],
                                                        retry_delay=1))
        assert not res.failed, "%s %s" % (res.get("msg"), res.get("leader_changes"))
        assert res["vault_endpoint"] != old
        assert time.time() - started < 30
        new = own_cluster.leader()
        assert new and new != old and res["vault_endpoint"] == new
    finally:
        # The restarted node comes back sealed; unseal brings it back as a voter with no other call.
        # (In `finally`, so one failure here does not leave the next tests a cluster with a dead node.)
        own_cluster.lc.start_node(victim)
        res = run_module("vault_unseal", own_cluster.conn())
    assert not res.failed and res["unsealed"] == [old], res
    status = own_cluster.wait_voters(3)
    assert status["sealed_nodes"] == []


def test_quorum_lost_fails_fast_and_says_so(own_cluster):
    leader = own_cluster.leader()
    victims = standby_urls(own_cluster)
    for url in victims:
        own_cluster.lc.stop_node(node_for(own_cluster, url))
    try:
        started = time.time()
        res = run_module("vault_raft", own_cluster.conn(autopilot=dict(server_stabilization_time="4s")))
        elapsed = time.time() - started
        assert res.failed
        assert res["changed"] is False
        assert "quorum" in res["msg"].lower() or "no active node" in res["msg"].lower(), res["msg"]
        assert "unseal-recovery" in res["msg"] or "Start or unseal" in res["msg"]
        assert elapsed < 30, elapsed
        status = run_module("vault_status_info", own_cluster.conn())
        assert not status.failed
        assert sorted(status["unreachable_nodes"]) == sorted(victims)
        assert leader not in status["unreachable_nodes"]
    finally:
        for url in victims:
            own_cluster.lc.start_node(node_for(own_cluster, url))
    res = run_module("vault_unseal", own_cluster.conn())
    assert not res.failed, res
    own_cluster.wait_voters(3)


def test_wrong_ca_is_a_clear_tls_error(own_cluster, tmp_path_factory):
    other = ClusterHandle(tmp_path_factory.mktemp("otherca"), node_count=1)
    other.lc.ensure_dirs()
    other.lc.ensure_pki()
    res = run_module("vault_status_info", own_cluster.conn(ca_cert=other.ca_cert))
    assert res.failed
    assert "TLS verification failed" in res["msg"] and "ca_cert" in res["msg"]


def test_validate_certs_false_warns(own_cluster):
    res = run_module("vault_status_info", own_cluster.conn(validate_certs=False, include_raft=False))
    assert not res.failed, res
    assert "NOT verified" in json.dumps(res.get("warnings", []))  # 2.19 returns structured warnings


def test_bad_token_is_a_clear_error(own_cluster):
    res = run_module("vault_raft", own_cluster.conn(auth_method="token", token="s.not-a-real-token"))
    assert res.failed
    assert "permission denied" in res["msg"] and "token" in res["msg"]
    assert "s.not-a-real-token" not in res.stdout.replace('"token": "********"', "")
