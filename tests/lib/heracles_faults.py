"""Fault injection on a real test cluster: find and kill the leader, watch a run's progress, bring nodes back.

Used by tests/reliability. Progress is *detected* (a count read from the cluster, a file that grew), never
guessed with a fixed sleep, so a kill lands where the test says it lands.
"""

import os
import secrets
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import hvac.exceptions

from heracles_testlib import run_module


def node_for(cluster, url):
    return [n for n in cluster.lc.nodes if n.api_addr == url][0]


def wait_for(what, probe, timeout=60.0, interval=0.1):
    """Call ``probe()`` until it returns something truthy; return that, or fail naming ``what``."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = probe()
        except Exception as exc:  # noqa: BLE001 - a node may be down or electing right now
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def wait_leader(cluster, timeout=60.0):
    return wait_for("an active node", cluster.leader, timeout)


def kill_leader(cluster):
    """SIGKILL the active node (no shutdown, no step-down); return its API address."""
    leader = wait_leader(cluster)
    assert cluster.lc.kill_node(node_for(cluster, leader))
    return leader


def count_keys(cluster, mount, folder):
    """Number of keys directly under ``folder`` (``LIST <mount>/metadata/<folder>``) on the current leader."""
    client = cluster.hvac(url=wait_leader(cluster, 30))
    try:
        return len(client.secrets.kv.v2.list_secrets(folder, mount_point=mount)["data"]["keys"])
    except hvac.exceptions.InvalidPath:
        return 0


def wait_keys(cluster, mount, folder, at_least, running=None, timeout=120.0):
    """Wait until ``folder`` holds ``at_least`` keys; fail if ``running()`` turns false first (run ended)."""
    def probe():
        count = count_keys(cluster, mount, folder)
        if running is not None and not running() and count < at_least:
            raise AssertionError("the run ended before %d keys were written (%d)" % (at_least, count))
        return count if count >= at_least else None
    return wait_for("%d keys under %s/%s" % (at_least, mount, folder), probe, timeout, interval=0.05)


def nobody_listens(port, host="127.0.0.1"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(0.5)
    try:
        return sock.connect_ex((host, port)) != 0
    finally:
        sock.close()


def start_again(cluster, url):
    """Start a killed node again once nothing answers on its API port any more."""
    node = node_for(cluster, url)
    wait_for("port %d to be free again" % node.api_port, lambda: nobody_listens(node.api_port), timeout=30)
    cluster.lc.start_node(node)


def restart_and_unseal(cluster, url, voters=3):
    """Start a killed node again, unseal it with vault_unseal and wait for ``voters`` healthy voters."""
    start_again(cluster, url)
    res = run_module("vault_unseal", cluster.conn())
    assert not res.failed and url in res["unsealed"], res
    return cluster.wait_voters(voters, timeout=90)


def bring_all_back(cluster, voters=3):
    """Start every node that is down, unseal, wait for ``voters`` healthy voters (after a test that failed half-way)."""
    down = [n.api_addr for n in cluster.lc.nodes if not n.running()]
    for url in down:
        start_again(cluster, url)
    if down:
        res = run_module("vault_unseal", cluster.conn())
        assert not res.failed, res
        cluster.wait_voters(voters, timeout=90)


def read_kv(cluster, mount, paths, workers=8):
    """``{path: (data, current_version)}`` for ``paths``, read with the root token from the active node."""
    client = cluster.hvac(url=wait_leader(cluster))

    def one(path):
        body = client.secrets.kv.v2.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True)
        return path, (body["data"]["data"], body["data"]["metadata"]["version"])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, paths))


def current_versions(cluster, mount, paths, workers=8):
    """``{path: current_version}`` from the metadata (0 when the secret does not exist)."""
    client = cluster.hvac(url=wait_leader(cluster))

    def one(path):
        try:
            return path, client.secrets.kv.v2.read_secret_metadata(path, mount_point=mount)["data"]["current_version"]
        except hvac.exceptions.InvalidPath:
            return path, 0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, paths))


def partial_files(directory):
    """Temp files a snapshot save is writing in ``directory`` (``.<name>.<random>.partial``)."""
    return sorted(f for f in os.listdir(directory) if f.endswith(".partial"))


def wait_stream_started(directory, run, timeout=120.0):
    """Wait until a temp file in ``directory`` has bytes (the stream is flowing) or ``run`` has ended."""
    def probe():
        return any(os.path.getsize(os.path.join(directory, f)) for f in partial_files(directory)) or not run.running()
    wait_for("the snapshot stream to start", probe, timeout, interval=0.01)


class Paused:
    """SIGSTOP a process for the duration of a ``with`` block (SIGCONT on the way out, whatever happens).

    Pins the moment of a fault: the client holds an open, half-read stream while the server dies.
    """

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc_info):
        os.kill(self.pid, signal.SIGCONT)
        return False


def declared(count, folder, tag="v1"):
    """``count`` secrets of three fields under ``folder``: ``{path: {user, password, url}}``, fresh passwords."""
    return dict(("%s/s%04d" % (folder, i),
                 {"user": "user-%d" % i, "password": secrets.token_hex(16), "url": "https://svc-%d.example/%s" % (i, tag)})
                for i in range(count))


def values_of(state):
    """The data of a ``read_kv`` result, without versions."""
    return dict((path, data) for path, (data, dummy) in state.items())


def versions_above_one(state):
    """Paths of a ``read_kv`` result whose current version is not 1 (written more than once)."""
    return sorted(path for path, (dummy, version) in state.items() if version != 1)
