"""inventories/local: one knob moves the cluster, and every module follows it (issue 16, finding 6).

The connection URL and node list used to be written out for port 8200, so a cluster moved with
local_cluster_base_port left the modules talking to whatever listens on 8200. The session cluster runs on a free
port; backup.yml is run with only the local_cluster_* knobs pointing at it (no heracles_vault_connection), while a
listener on 127.0.0.1:8200 (when that port is free) counts connections. The run must succeed, nothing may connect to
8200, and no module argument in the -vvv output may name it.
"""

import json
import os
import socket
import subprocess
import threading

import pytest

from heracles_playbook import ANSIBLE_PLAYBOOK, Runner, recap
from heracles_testlib import ROOT, env

OLD_PORT = 8200


class Listener:
    """Accepts and counts connections on 127.0.0.1:port, if the port is free."""

    def __init__(self, port):
        self.count = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            self.sock = None
            return
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self):
        if self.sock is not None:
            self.stop.set()
            self.thread.join()
            self.sock.close()


def knobs(cluster, **extra):
    base = int(cluster.url.rsplit(":", 1)[1])
    out = dict(local_cluster_base_port=base, local_cluster_port_step=10, local_cluster_base_dir=cluster.base_dir,
               local_cluster_password_file=cluster.password_file)
    out.update(extra)
    return out


def rendered_connection(variables):
    """heracles_vault_connection as the local inventory renders it with these extra vars."""
    proc = subprocess.run([os.path.join(os.path.dirname(ANSIBLE_PLAYBOOK), "ansible"), "-i", "inventories/local",
                           "localhost", "-m", "ansible.builtin.debug", "-a", "var=heracles_vault_connection",
                           "-e", json.dumps(variables)],
                          cwd=ROOT, capture_output=True, text=True, env=env({"ANSIBLE_NOCOLOR": "1"}), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])["heracles_vault_connection"]


def test_the_inventory_derives_url_and_nodes_from_the_port_knobs():
    default = rendered_connection({})
    assert default["url"] == "https://127.0.0.1:8200"
    assert default["nodes"] == ["https://127.0.0.1:8210", "https://127.0.0.1:8220"]
    moved = rendered_connection(dict(local_cluster_base_port=31000, local_cluster_port_step=3, local_cluster_node_count=4))
    assert moved["url"] == "https://127.0.0.1:31000"
    assert moved["nodes"] == ["https://127.0.0.1:31003", "https://127.0.0.1:31006", "https://127.0.0.1:31009"]


def test_a_moved_cluster_is_the_one_the_modules_talk_to(cluster, tmp_path):
    listener = Listener(OLD_PORT)
    try:
        runner = Runner(tmp_path, knobs(cluster, backup_dir=str(tmp_path / "backups"), backup_min_interval="0s"))
        proc = runner.run("backup.yml", "-vvv")
    finally:
        listener.close()
    assert proc.returncode == 0 and recap(proc)["failed"] == 0, proc.stdout[-4000:]
    assert '"url": "%s"' % cluster.url in proc.stdout
    assert ":%d" % OLD_PORT not in proc.stdout
    if listener.sock is None:
        pytest.skip("127.0.0.1:%d is in use here, so connections to it could not be counted (the -vvv check passed)"
                    % OLD_PORT)
    assert listener.count == 0
