"""The README flow through ansible-playbook: site.yml up, rerun = changed 0, check mode,
-vvv --diff without secrets, down stops every process.  Runs on its own ports and state dir."""

import os

import hvac
import pytest

from heracles_playbook import Runner, recap
from heracles_testlib import LocalCluster, files_text, find_leaks, free_base_port, keystore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("site")
    base = free_base_port()
    cluster_dir = str(state / "cluster")
    urls = ["https://127.0.0.1:%d" % (base + 10 * i) for i in range(3)]
    runner = Runner(state, dict(
        heracles_state_dir=str(state),
        local_cluster_base_dir=cluster_dir,
        local_cluster_password_file=str(state / "vault-pass"),
        local_cluster_base_port=base,
        backup_dir=str(state / "backups"),
        bootstrap_autopilot=dict(server_stabilization_time="3s", cleanup_dead_servers=False),
        heracles_vault_connection=dict(
            url=urls[0], nodes=urls[1:], ca_cert=cluster_dir + "/tls/ca.pem", init_store="file",
            init_file=cluster_dir + "/init.vault", init_file_password_file=str(state / "vault-pass"),
            auth_method="init_file"),
    ))
    info = dict(state=str(state), urls=urls, cluster_dir=cluster_dir, base=base, runner=runner)
    yield info
    runner.run("down.yml", "-e", "down_state=absent")


def playbook(info, name, *args):
    return info["runner"].run(name, *args)


def test_site_first_run_brings_up_three_voters(stack):
    proc = playbook(stack, "site.yml", "-vvv", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    r = recap(proc)
    assert r["changed"] > 0 and r["failed"] == 0
    assert "voters:    node1, node2, node3 (autopilot healthy: True)" in proc.stdout
    assert "sealed:    0 of 3 nodes" in proc.stdout


def test_site_rerun_changes_nothing(stack):
    proc = playbook(stack, "site.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 0


def test_site_check_mode_changes_nothing(stack):
    proc = playbook(stack, "site.yml", "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 0


def test_no_secret_in_any_output_log_or_file(stack):
    password = open(os.path.join(stack["state"], "vault-pass")).read().strip()
    material = keystore.FileStore(os.path.join(stack["cluster_dir"], "init.vault"), password).read()
    needles = material["unseal_keys_b64"] + [material["root_token"]]
    # and every generated secret value that site.yml seeded (it lives in the raft data, snapshots and audit
    # logs under the state dir only encrypted or HMAC'd)
    client = hvac.Client(url=stack["urls"][0], verify=os.path.join(stack["cluster_dir"], "tls", "ca.pem"),
                         token=material["root_token"])
    for env in ("dev", "staging", "prod"):
        for path in ("apps/payments/db", "apps/orders/redis"):
            data = client.secrets.kv.v2.read_secret_version(path, mount_point="kv-" + env,
                                                            raise_on_deleted_version=True)["data"]["data"]
            needles.append(data["password"])
    assert len(needles) == 5 + 1 + 6
    outputs = stack["runner"].outputs
    assert len(outputs) >= 3
    files = list(files_text(stack["state"]))
    assert any(p.endswith("init.vault") for p, dummy in files)
    hits = find_leaks(needles, outputs + files)
    assert hits == [], hits
    # The ansible-vault password only lives in its own file.
    assert find_leaks([password], outputs + [(p, t) for p, t in files if not p.endswith("vault-pass")]) == []


def test_key_files_are_private(stack):
    for path in ["vault-pass", "cluster/init.vault", "cluster/tls/ca-key.pem", "cluster/tls/node1-key.pem"]:
        mode = os.stat(os.path.join(stack["state"], path)).st_mode & 0o777
        assert mode == 0o600, (path, oct(mode))


def test_down_stops_every_process(stack):
    lc = LocalCluster(stack["cluster_dir"], base_port=stack["base"])
    pids = [n.pid() for n in lc.nodes]
    assert all(pids) and all(n.running() for n in lc.nodes)
    proc = playbook(stack, "down.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 1
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(")")[-1].split()[0] == "Z"
    assert not any(n.running() for n in lc.nodes)
    # data kept: up again unseals the same cluster (no re-init)
    proc = playbook(stack, "site.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "voters:    node1, node2, node3" in proc.stdout
    assert "Initialise the cluster (keys go only to the encrypted destination)] ***\nok:" in proc.stdout
