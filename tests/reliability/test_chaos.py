"""The long variant of test_faults.py: more data, more kills (``make chaos``; excluded from ``make test``).

* 5000 secrets x 3 fields, the leader SIGKILLed at 10, 30, 50, 70 and 90 % of the run, one run per point;
* one run of 5000 secrets during which the leader is killed again and again, each killed node restarted and
  unsealed while the run goes on (it follows every new leader);
* a snapshot save cut by a leader kill, three times in a row.

Each run must complete, every secret must hold its declared value at version 1, and a rerun must change nothing.
"""

import os

import pytest

from heracles_faults import (
    Paused, declared, kill_leader, node_for, partial_files, read_kv, restart_and_unseal, values_of,
    versions_above_one, wait_keys, wait_stream_started,
)
from heracles_testlib import run_module, start_module

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.usefixtures("all_nodes_back")]

MOUNT = "kv-chaos"
COUNT = 5000


def seed(c, folder, data, **extra):
    return c.conn(mount=MOUNT, prefix=folder, secrets=data, **extra)


def assert_seeded_once(c, folder, data, res):
    assert not res.failed, res.get("msg")
    assert res["created"] == len(data) and res["conflicts"] == [], (res["created"], res["unchanged"])
    state = read_kv(c, MOUNT, data, workers=16)
    assert values_of(state) == data
    assert versions_above_one(state) == []
    again = run_module("vault_kv_seed", seed(c, folder, data))
    assert not again.failed and again["changed"] is False and again["unchanged"] == len(data), again.get("msg")


@pytest.mark.parametrize("percent", [10, 30, 50, 70, 90])
def test_leader_killed_at_progress_point(c, percent):
    folder = "at%d" % percent
    data = declared(COUNT, folder)
    run = start_module("vault_kv_seed", seed(c, folder, data))
    try:
        wait_keys(c, MOUNT, folder, COUNT * percent // 100, run.running, timeout=600)
        assert run.running(), "the seed finished before the leader could be killed"
        old = kill_leader(c)
    finally:
        res = run.wait(timeout=900)
    assert any(m["from"] == old for m in res["leader_changes"]), res["leader_changes"]
    restart_and_unseal(c, old)
    assert_seeded_once(c, folder, data, res)


def test_leader_killed_again_and_again_during_one_run(c):
    folder = "rolling"
    data = declared(COUNT, folder)
    run = start_module("vault_kv_seed", seed(c, folder, data, concurrency=4))
    killed = []
    try:
        for percent in (15, 35, 55, 75, 95):
            try:
                wait_keys(c, MOUNT, folder, COUNT * percent // 100, run.running, timeout=600)
            except AssertionError:
                break  # the run finished first
            if not run.running():
                break
            killed.append(kill_leader(c))
            restart_and_unseal(c, killed[-1])  # while the run goes on
    finally:
        res = run.wait(timeout=900)
    assert len(killed) >= 2, "only %d kill(s) landed during the run" % len(killed)
    moved_from = [m["from"] for m in res["leader_changes"]]
    assert all(url in moved_from for url in killed), (killed, res["leader_changes"])
    assert_seeded_once(c, folder, data, res)


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_snapshot_cut_by_a_leader_kill(c, tmp_path, round_):
    if round_ == 1:
        blobs = dict(("blob/b%03d" % i, {"data": os.urandom(300000).hex()}) for i in range(80))
        res = run_module("vault_kv_seed", seed(c, "blob", blobs, concurrency=4))
        assert not res.failed, res.get("msg")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    path = str(backups / "raft.snap")

    run = start_module("vault_raft_snapshot", c.conn(path=path))
    old = None
    try:
        wait_stream_started(str(backups), run)
        with Paused(run.pid):
            if partial_files(str(backups)):
                old = kill_leader(c)
    finally:
        res = run.wait(timeout=300)
    assert old, "the stream finished before the leader could be killed"
    assert partial_files(str(backups)) == []
    if res.failed:
        assert res["changed"] is False and not os.path.exists(path), res["msg"]
    else:
        verified = run_module("vault_raft_snapshot", c.conn(path=path, state="verified"))
        assert not verified.failed and verified["sha256"] == res["sha256"]
    restart_and_unseal(c, old)
    assert node_for(c, old).running()
