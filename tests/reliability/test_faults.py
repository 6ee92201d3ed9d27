"""Faults against a real cluster: the active node is SIGKILLed while modules and playbooks work.

One cluster of its own for the whole file (``own_cluster``); after every test all three nodes run as healthy
voters again (the test restores them, or ``all_nodes_back`` does when a test failed half-way).

* seeding: vault_kv_seed runs in the background and the leader is killed once a quarter is written: the run
  completes on the new leader, counts every secret as created, every secret holds its declared value and none has
  a second version (a write whose answer died with the leader is recognised on the re-read, not written twice);
* configure.yml: the leader dies once the first secrets engine exists; the run completes (or fails clearly and a
  rerun completes), a rerun changes nothing and the declared mounts, policies and auth methods are in place;
* snapshot: the leader dies mid-stream (the module is paused with a half-written temp file); the result is a
  verified snapshot or a clear failure, never a partial file; the killed leader comes back through
  playbooks/unseal-recovery.yml;
* concurrency: two seeds of the same secrets disagree on one field; every write is a version of its own (cas), the
  last writer wins, a secret already as declared gets no version, conflicts are reported clearly (cas_retries=0);
* quorum: two of three nodes killed: vault_kv_seed fails in < 30 s saying "quorum", claims no change, and lists
  every write that got no answer (the only ones the cluster may still apply).

Leader-following of single calls, a stopped node and quorum loss for vault_raft are in
tests/integration/test_leader_following.py; the playbook-level recovery of sealed and lost nodes in
tests/integration/test_unseal_recovery.py. docs/reliability.md has the whole table.
"""

import os
import secrets as pysecrets
import stat
import time

import pytest

from heracles_faults import (
    Paused, current_versions, declared, kill_leader, node_for, partial_files, read_kv,
    restart_and_unseal, start_again, values_of, versions_above_one, wait_for, wait_keys, wait_leader,
    wait_stream_started,
)
from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, find_leaks, run_module, start_module

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("all_nodes_back")]

MOUNT = "kv-rel"
SEEDED = 1000


@pytest.fixture(scope="module")
def recovery(c, tmp_path_factory):
    """A playbook Runner for this cluster (unseal-recovery.yml)."""
    return Runner(tmp_path_factory.mktemp("faults-run"), dict(heracles_vault_connection=connection_vars(c),
                                                              unseal_recovery_wait_timeout=60))


def seed(c, folder, data, **extra):
    return c.conn(mount=MOUNT, prefix=folder, secrets=data, **extra)


# -- leader loss while seeding -----------------------------------------------------------------------------------------
def test_leader_killed_while_seeding_completes_without_double_writes(c):
    data = declared(SEEDED, "seed")
    run = start_module("vault_kv_seed", seed(c, "seed", data))
    try:
        at_kill = wait_keys(c, MOUNT, "seed", SEEDED // 4, run.running)
        assert run.running(), "the seed finished before the leader could be killed"
        old = kill_leader(c)
    finally:
        res = run.wait(timeout=300)
    assert at_kill < SEEDED
    assert not res.failed, res.get("msg")
    assert res["vault_endpoint"] != old and any(m["from"] == old for m in res["leader_changes"]), res["leader_changes"]
    # Every secret was written once by this run: a write whose response died with the leader is found in place
    # on the re-read and counted, not written again.
    assert res["created"] == SEEDED and res["unchanged"] == 0 and res["conflicts"] == []
    assert set(res["versions"].values()) == {1}
    assert find_leaks([f["password"] for f in data.values()], [("result", res.stdout + res.stderr)]) == []
    state = read_kv(c, MOUNT, data)
    assert values_of(state) == data
    assert versions_above_one(state) == []

    restart_and_unseal(c, old)
    again = run_module("vault_kv_seed", seed(c, "seed", data))
    assert not again.failed and again["changed"] is False and again["unchanged"] == SEEDED, again.get("msg")
    assert versions_above_one(read_kv(c, MOUNT, data)) == []


# -- leader loss while configure.yml runs ------------------------------------------------------------------------------
ENVS = ["dev", "staging", "prod"]


def declared_config():
    return vault_data.load(os.path.join(ROOT, "vault"), ENVS)


def test_leader_killed_during_configure_then_rerun_changes_nothing(c, tokenreview, tmp_path):
    k8s = tokenreview.reviewer_config(tmp_path)
    runner = Runner(tmp_path, dict(heracles_vault_connection=connection_vars(c), configure_environments=ENVS,
                                   configure_kubernetes=dict((e, k8s) for e in ENVS)))
    want = declared_config()
    kv_paths = [m["path"].strip("/") + "/" for m in want["mounts"]]

    def mounted():
        return set(c.hvac(url=wait_leader(c, 30)).sys.list_mounted_secrets_engines()["data"])

    play = runner.start("configure.yml")
    try:
        # Kill once the engines task has created its first mount: policies before it, auth and the rest after.
        wait_for("configure.yml to create a secrets engine", lambda: mounted() & set(kv_paths) or not play.running(),
                 timeout=300, interval=0.1)
        assert play.running(), "configure.yml finished before the leader could be killed"
        old = kill_leader(c)
    finally:
        proc = play.wait(timeout=600)
    if proc.returncode != 0:
        # Allowed only as a clear failure that a plain rerun fixes.
        assert recap(proc)["failed"] == 1 and ("quorum" in proc.stdout.lower() or "leader" in proc.stdout.lower()), \
            proc.stdout[-4000:]
        proc = runner.run("configure.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    again = runner.run("configure.yml")
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-4000:]

    root = c.hvac(url=wait_leader(c))
    assert set(kv_paths) <= mounted()
    assert set(want["policies"]) <= set(root.sys.list_acl_policies()["data"]["keys"])
    assert set(a["path"].strip("/") + "/" for a in want["auth"]) <= set(root.sys.list_auth_methods()["data"])
    restart_and_unseal(c, old)


# -- leader loss while a snapshot streams ------------------------------------------------------------------------------
BLOBS = 60
BLOB_CHARS = 400000


def test_leader_killed_mid_snapshot_leaves_no_partial_file(c, recovery, tmp_path):
    blobs = dict(("blob/b%03d" % i, {"data": pysecrets.token_urlsafe(BLOB_CHARS)}) for i in range(BLOBS))
    res = run_module("vault_kv_seed", seed(c, "blob", blobs, concurrency=4))
    assert not res.failed and res["created"] == BLOBS, res.get("msg")  # ~24 MB that does not compress
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    path = str(backups / "raft.snap")
    for attempt in range(3):
        run = start_module("vault_raft_snapshot", c.conn(path=path))
        try:
            wait_stream_started(str(backups), run)
            with Paused(run.pid):
                # The client holds a half-written temp file and an open stream: kill the leader now.
                temp = partial_files(str(backups))
                if temp:
                    assert [f for f in temp if not f.startswith(".raft.snap.")] == [], temp
                    assert all(stat.S_IMODE(os.stat(str(backups / f)).st_mode) == 0o600 for f in temp)
                    assert not os.path.exists(path)
                    old = kill_leader(c)
        finally:
            res = run.wait(timeout=300)
        if temp:
            break
        # The stream finished before the module could be paused (a very fast host): try again.
        assert not res.failed, res.get("msg")
        for name in (path, path + ".sha256", path + ".sig"):
            os.unlink(name)
    else:
        pytest.fail("the snapshot stream always finished before the leader could be killed")

    assert partial_files(str(backups)) == []
    if res.failed:
        assert res["changed"] is False and "snapshot" in res["msg"].lower(), res["msg"]
        assert os.listdir(str(backups)) == [], "a failed save left files behind"
    else:
        assert res["changed"] is True and any(m["from"] == old for m in res["leader_changes"]), res
        assert sorted(os.listdir(str(backups))) == ["raft.snap", "raft.snap.sha256", "raft.snap.sig"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        verified = run_module("vault_raft_snapshot", c.conn(path=path, state="verified"))
        assert not verified.failed and verified["sha256"] == res["sha256"] and verified["size"] == res["size"]

    # The killed leader restarts sealed; the recovery runbook unseals it and it rejoins as a voter.
    start_again(c, old)
    proc = recovery.run("unseal-recovery.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "unsealed:   %s" % old in proc.stdout and "result:     HEALTHY" in proc.stdout, proc.stdout[-4000:]
    status = c.wait_voters(3)
    assert status["sealed_nodes"] == []


# -- two seeds at once -------------------------------------------------------------------------------------------------
RACED = 240
STEADY = 40


@pytest.mark.parametrize("cas_retries", [3, 0])
def test_two_seeds_at_once_last_writer_wins_and_nothing_is_lost(c, cas_retries):
    folder = "race%d" % cas_retries
    base = declared(RACED + STEADY, folder)
    first = run_module("vault_kv_seed", seed(c, folder, base))
    assert not first.failed and first["created"] == RACED + STEADY, first.get("msg")
    raced = sorted(base)[:RACED]
    steady = sorted(base)[RACED:]
    # Both declare every secret; for the raced ones they disagree on one field, the steady ones are as stored.
    runs = {}
    for name in ("a", "b"):
        wanted = dict((p, dict(base[p], url="https://%s.example/%s" % (name, p)) if p in raced else base[p])
                      for p in base)
        runs[name] = (wanted, start_module("vault_kv_seed", seed(c, folder, wanted, cas_retries=cas_retries)))
    results = dict((name, run.wait(timeout=300)) for name, (dummy, run) in runs.items())

    for name, res in results.items():
        if res.failed:  # allowed: a clear conflict report, everything else applied
            assert res["conflicts"], res.get("msg")
            assert "kept changing under another writer" in res["msg"] and "Rerun" in res["msg"], res["msg"]
        assert set(res["conflicts"]).isdisjoint(res["versions"]), name
        assert set(res["versions"]) == set(res["paths"]["updated"]) <= set(raced), name
        assert set(steady) <= set(res["paths"]["unchanged"]), name
    state = read_kv(c, MOUNT, base)
    for path in steady:
        assert state[path] == (base[path], 1), path
    for path in raced:
        data, version = state[path]
        written = dict((name, res["versions"][path]) for name, res in results.items() if path in res["versions"])
        # Every reported write is a version of its own (cas): none was lost or overwritten unseen.
        assert written and sorted(written.values()) == list(range(2, version + 1)), (path, written, version)
        last = [name for name, number in written.items() if number == version][0]
        assert data == runs[last][0][path], path  # the last writer wins, with all of its fields
    # The loser's rerun writes exactly the secrets the other run won, nothing else.
    wanted_b = runs["b"][0]
    lost_by_b = sorted(p for p in raced if state[p][0] != wanted_b[p])
    again = run_module("vault_kv_seed", seed(c, folder, wanted_b))
    assert not again.failed, again.get("msg")
    assert sorted(again["paths"]["updated"]) == lost_by_b and again["unchanged"] == RACED + STEADY - len(lost_by_b)
    after = current_versions(c, MOUNT, base)
    assert dict((p, v) for p, v in after.items() if v != state[p][1]) == dict((p, state[p][1] + 1) for p in lost_by_b)


# -- quorum lost: two of three nodes killed ----------------------------------------------------------------------------
def test_two_nodes_killed_seed_fails_fast_says_quorum_claims_no_change(c):
    leader = wait_leader(c)
    victims = [u for u in c.urls if u != leader]
    for url in victims:
        assert c.lc.kill_node(node_for(c, url))
    data = declared(20, "quorum")
    try:
        started = time.time()
        res = run_module("vault_kv_seed", seed(c, "quorum", data))
        elapsed = time.time() - started
        assert res.failed and res["changed"] is False and res.get("created", 0) == 0, res
        assert "quorum" in res["msg"].lower(), res["msg"]
        assert elapsed < 30, elapsed
    finally:
        for url in victims:
            start_again(c, url)
    unseal = run_module("vault_unseal", c.conn())
    assert not unseal.failed and sorted(unseal["unsealed"]) == sorted(victims), unseal
    c.wait_voters(3, timeout=90)
    # Raft may commit what the lone ex-leader had in its log once the others are back: only writes reported as
    # unanswered may exist, and the message said they might.
    written = dict((p, v) for p, v in current_versions(c, MOUNT, data).items() if v)
    assert set(written) <= set(res.get("unanswered", [])), (written, res["msg"])
    if res.get("unanswered"):
        assert "may still be applied" in res["msg"] and "Nothing was changed" not in res["msg"], res["msg"]
    again = run_module("vault_kv_seed", seed(c, "quorum", data))
    assert not again.failed and again["created"] == len(data) - len(written), again.get("msg")
    assert values_of(read_kv(c, MOUNT, data)) == data
