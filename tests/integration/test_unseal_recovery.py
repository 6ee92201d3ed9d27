"""playbooks/unseal-recovery.yml against real clusters of its own (it stops and restarts nodes).

* a restarted node comes back sealed: --check reports the change and leaves it sealed, the real run unseals it
  (3 healthy voters), the rerun changes nothing;
* two of three nodes down: the run fails with QUORUM LOST and what to do, and does not claim success; once the
  nodes are started again the same playbook brings the cluster back;
* no init file: a clear failure before anything is changed;
* an auto-unseal (transit) node whose key cannot decrypt stays sealed: the run says the KMS key is likely
  unavailable and what to check, and migrates nothing; the node unseals itself once the key works again;
* a dead peer is removed only when asked (autopilot: dead for longer than the threshold), --check first;
* no unseal key or root token appears in any output or log of these runs.
"""

import os
import signal
import subprocess
import time

import pytest

from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ClusterHandle, find_leaks, free_base_port, run_module

pytestmark = pytest.mark.slow

PLAYBOOK = "unseal-recovery.yml"


@pytest.fixture(scope="module")
def recovery_cluster(own_cluster):
    """A bootstrapped 3-node cluster this module may stop and restart nodes of."""
    return own_cluster


@pytest.fixture(scope="module")
def runner(recovery_cluster, tmp_path_factory):
    return Runner(tmp_path_factory.mktemp("recovery-run"), dict(
        heracles_vault_connection=connection_vars(recovery_cluster), unseal_recovery_wait_timeout=30))


def node_for(c, url):
    return [n for n in c.lc.nodes if n.api_addr == url][0]


def standbys(c):
    leader = c.leader()
    return [u for u in c.urls if u != leader]


def status(c):
    res = run_module("vault_status_info", c.conn())
    assert not res.failed, res
    return res


def secrets_of(c):
    material = c.init_material()
    return list(material.get("unseal_keys_b64") or []) + list(material.get("unseal_keys_hex") or []) + [material["root_token"]]


def assert_no_leak(c, runner_):
    haystacks = list(runner_.outputs)
    for name in os.listdir(runner_.state_dir):
        if name.endswith(".log"):
            with open(os.path.join(runner_.state_dir, name)) as handle:
                haystacks.append((name, handle.read()))
    assert len(haystacks) > len(runner_.outputs), "no ansible log was written"
    assert find_leaks(secrets_of(c), haystacks) == []


def test_restarted_node_check_then_real_then_rerun(recovery_cluster, runner):
    c = recovery_cluster
    victim = standbys(c)[0]
    c.lc.stop_node(node_for(c, victim))
    c.lc.start_node(node_for(c, victim))
    assert status(c)["sealed_nodes"] == [victim]

    check = runner.run(PLAYBOOK, "--check")
    assert check.returncode == 0, check.stdout[-4000:]
    assert recap(check)["changed"] >= 1
    assert "CHECK MODE - nothing was changed" in check.stdout
    assert "unsealed:   would be %s" % victim in check.stdout
    assert status(c)["sealed_nodes"] == [victim]

    real = runner.run(PLAYBOOK)
    assert real.returncode == 0, real.stdout[-4000:]
    assert recap(real)["changed"] >= 1 and recap(real)["failed"] == 0
    assert "unsealed:   %s" % victim in real.stdout and "result:     HEALTHY" in real.stdout
    after = status(c)
    assert after["sealed_nodes"] == [] and len(after["voters"]) == 3 and after["autopilot"]["healthy"]

    again = runner.run(PLAYBOOK)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0
    assert "unsealed:   none" in again.stdout and "result:     HEALTHY" in again.stdout
    assert_no_leak(c, runner)


def test_two_nodes_down_fails_with_quorum_lost_then_recovers(recovery_cluster, runner):
    c = recovery_cluster
    victims = standbys(c)
    for url in victims:
        c.lc.stop_node(node_for(c, url))
    try:
        started = time.time()
        proc = runner.run(PLAYBOOK)
        assert proc.returncode != 0
        assert recap(proc)["failed"] == 1
        out = proc.stdout
        assert "QUORUM LOST: only 1 of 3 voters are up and unsealed" in out, out[-4000:]
        assert "electing a leader needs 2" in out and "Start the missing nodes" in out and "Lost quorum" in out
        for url in victims:
            assert url in out.split("Not reachable:")[1][:400]
        assert "HEALTHY" not in out and "Unsealed in this run" not in out
        assert time.time() - started < 45
    finally:
        for url in victims:
            c.lc.start_node(node_for(c, url))
    # The nodes are back, sealed: the same runbook finishes the job.
    proc = runner.run(PLAYBOOK)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "result:     HEALTHY" in proc.stdout
    for url in victims:
        assert url in proc.stdout.split("unsealed:   ")[1].splitlines()[0]
    assert_no_leak(c, runner)


def test_missing_init_file_is_a_clear_failure(recovery_cluster, tmp_path):
    c = recovery_cluster
    conn = dict(connection_vars(c), init_file=str(tmp_path / "no-such-init.vault"))
    proc = Runner(tmp_path, dict(heracles_vault_connection=conn, unseal_recovery_wait_timeout=10)).run(PLAYBOOK)
    assert proc.returncode != 0
    assert "Cannot unseal: The encrypted init file %s does not exist" % conn["init_file"] in proc.stdout, proc.stdout[-3000:]
    assert "needs this cluster's encrypted init material" in proc.stdout and "Nothing was changed" in proc.stdout
    assert status(c)["sealed_nodes"] == []


def test_dead_peer_removed_only_when_asked(recovery_cluster, runner):
    """Last on this cluster: it leaves two voters. The node stays down until autopilot calls it unhealthy."""
    c = recovery_cluster
    victim = standbys(c)[0]
    c.lc.stop_node(node_for(c, victim))
    deadline = time.time() + 60
    while True:
        state = status(c)
        dead = [k for k, v in state["autopilot"].get("servers", {}).items() if not v.get("healthy")]
        if dead or time.time() > deadline:
            break
        time.sleep(1)
    assert len(dead) == 1, state["autopilot"]
    # Not asked to remove anything: the run fails, names the unhealthy peer and how to remove it, removes nothing.
    proc = runner.run(PLAYBOOK, "-e", "unseal_recovery_wait_timeout=2")
    assert proc.returncode != 0 and "unhealthy peers: %s" % dead[0] in proc.stdout, proc.stdout[-3000:]
    assert "unseal_recovery_remove_peers" in proc.stdout and "removed none" in proc.stdout
    assert dead[0] in status(c)["voters"]
    asked = ("-e", "unseal_recovery_remove_dead=true", "-e", "unseal_recovery_dead_threshold=5s",
             "-e", "unseal_recovery_expected_voters=2")
    check = runner.run(PLAYBOOK, "--check", *asked)
    assert check.returncode == 0, check.stdout[-3000:]
    assert "removed:    would be %s" % dead[0] in check.stdout and recap(check)["changed"] >= 1
    assert len(status(c)["peers"]) == 3
    real = runner.run(PLAYBOOK, *asked)
    assert real.returncode == 0, real.stdout[-3000:]
    assert "removed:    %s" % dead[0] in real.stdout and "result:     HEALTHY" in real.stdout
    after = status(c)
    assert sorted(p["node_id"] for p in after["peers"]) == sorted(v for v in after["voters"]) and len(after["voters"]) == 2
    assert dead[0] not in after["voters"]
    assert_no_leak(c, runner)


# -- auto-unseal ------------------------------------------------------------------------------------------
BAO = os.path.join(os.path.dirname(os.sys.executable), "bao")


@pytest.fixture(scope="module")
def transit(tmp_path_factory):
    """A dev-mode OpenBao with a transit key: the 'KMS' of a one-node auto-unseal cluster."""
    port = free_base_port(nodes=1)
    addr = "http://127.0.0.1:%d" % port
    log = open(str(tmp_path_factory.mktemp("transit") / "dev.log"), "w")
    root = "devroot-%d" % port
    proc = subprocess.Popen([BAO, "server", "-dev", "-dev-root-token-id=" + root, "-dev-listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, BAO_ADDR=addr, BAO_TOKEN=root)

    def bao(*args):
        return subprocess.run([BAO] + list(args), env=env, capture_output=True, text=True, check=False)

    try:
        for dummy in range(50):
            if bao("secrets", "enable", "transit").returncode == 0:
                break
            time.sleep(0.2)
        assert bao("write", "-f", "transit/keys/unseal").returncode == 0
        yield dict(addr=addr, token=root, bao=bao)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def auto_cluster(transit, tmp_path_factory):
    handle = ClusterHandle(tmp_path_factory.mktemp("autounseal"), node_count=1)
    render = handle.lc.render_config
    seal = ('\nseal "transit" {\n  address    = "%s"\n  token      = "%s"\n  key_name   = "unseal"\n'
            '  mount_path = "transit/"\n}\n' % (transit["addr"], transit["token"]))

    def render_with_seal(node):
        return render(node) + seal

    handle.lc.render_config = render_with_seal
    handle.start()
    try:
        res = run_module("vault_init", handle.conn(auth_method="none", recovery_shares=3, recovery_threshold=2))
        assert not res.failed, res
        handle.wait_voters(1)
        yield handle
    finally:
        handle.stop()


def test_auto_unseal_node_stays_sealed_reports_kms_and_migrates_nothing(auto_cluster, transit, tmp_path):
    c = auto_cluster
    runner_ = Runner(tmp_path, dict(heracles_vault_connection=connection_vars(c), unseal_recovery_wait_timeout=2,
                                    unseal_recovery_expected_voters=1))
    # The key can no longer decrypt what the node stored (as when a KMS key policy stops allowing kms:Decrypt).
    assert transit["bao"]("write", "-f", "transit/keys/unseal/rotate").returncode == 0
    assert transit["bao"]("write", "transit/keys/unseal/config", "min_decryption_version=2").returncode == 0
    node = c.lc.nodes[0]
    c.lc.stop_node(node)
    c.lc.start_node(node)
    assert status(c)["sealed_nodes"] == [c.url]
    for args in (("--check",), ()):
        proc = runner_.run(PLAYBOOK, *args)
        assert proc.returncode != 0
        out = proc.stdout
        assert "%s use auto-unseal (transit) and are still sealed" % c.url in out, out[-3000:]
        assert "KMS key is most likely unavailable" in out and "key policy" in out and "IRSA" in out
        assert "Seal migration" in out and "never migrates seals" in out
        assert recap(proc)["changed"] == 0
    seal = status(c)["nodes"][0]
    assert seal["sealed"] and seal["seal_type"] == "transit"
    # The key works again: the node unseals itself, and the runbook confirms it without changing anything.
    assert transit["bao"]("write", "transit/keys/unseal/config", "min_decryption_version=1").returncode == 0
    proc = runner_.run(PLAYBOOK, "-e", "unseal_recovery_wait_timeout=30")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "result:     HEALTHY" in proc.stdout and "(auto-unseal)" in proc.stdout and recap(proc)["changed"] == 0
    assert_no_leak(c, runner_)
