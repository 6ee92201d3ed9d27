"""The README flow through ansible-playbook: site.yml up, rerun = changed 0, check mode,
-vvv --diff without secrets, down stops every process.  Runs on its own ports and state dir."""

import json
import os
import re
import subprocess

import pytest

from heracles_testlib import ROOT, LocalCluster, env, files_text, find_leaks, free_base_port, keystore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("site")
    base = free_base_port()
    cluster_dir = str(state / "cluster")
    urls = ["https://127.0.0.1:%d" % (base + 10 * i) for i in range(3)]
    extra = dict(
        local_cluster_base_dir=cluster_dir,
        local_cluster_password_file=str(state / "vault-pass"),
        local_cluster_base_port=base,
        bootstrap_autopilot=dict(server_stabilization_time="3s", cleanup_dead_servers=False),
        heracles_vault_connection=dict(
            url=urls[0], nodes=urls[1:], ca_cert=cluster_dir + "/tls/ca.pem", init_store="file",
            init_file=cluster_dir + "/init.vault", init_file_password_file=str(state / "vault-pass"),
            auth_method="init_file"),
    )
    vars_file = state / "vars.json"
    vars_file.write_text(json.dumps(extra))
    info = dict(state=str(state), vars=str(vars_file), urls=urls, cluster_dir=cluster_dir, base=base,
                logs=[])
    yield info
    playbook(info, "down.yml", "-e", "down_state=absent")


def playbook(info, name, *args):
    log = os.path.join(info["state"], "ansible-%d.log" % len(info["logs"]))
    cmd = [os.path.join(os.path.dirname(os.sys.executable), "ansible-playbook"), "-i", "inventories/local",
           "playbooks/" + name, "-e", "@" + info["vars"]] + list(args)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env=env({"ANSIBLE_LOG_PATH": log, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}))
    info["logs"].append((name, proc.stdout + proc.stderr))
    return proc


def recap(proc):
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(ok=int(match.group(1)), changed=int(match.group(2)), failed=int(match.group(4)))


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
    outputs = [("ansible-playbook %s" % name, text) for name, text in stack["logs"]]
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
