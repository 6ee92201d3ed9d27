"""Shared test helpers: run modules for real, start real clusters, search for leaks.

Modules run as separate processes exactly as Ansible runs them on a host
(``python -m <module>`` with ``ANSIBLE_MODULE_ARGS`` on stdin), so a test sees
the same JSON, exit code and stderr a playbook would.
"""

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".collections")
PKG = "ansible_collections.heracles.secrets"

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.heracles.secrets.plugins.module_utils import keystore  # noqa: E402
from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import LocalCluster  # noqa: E402


def env(extra=None):
    out = dict(os.environ)
    out["PYTHONPATH"] = COLLECTIONS + os.pathsep + out.get("PYTHONPATH", "")
    out["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS
    for var in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
        out.pop(var, None)
    out.update(extra or {})
    return out


class ModuleResult(dict):
    def __init__(self, data, rc, stdout, stderr):
        super().__init__(data)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def failed(self):
        return self.rc != 0 or bool(self.get("failed"))


def _module_cmd(name):
    return [sys.executable, "-m", "%s.plugins.modules.%s" % (PKG, name)]


def _module_input(args, check, diff):
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    return json.dumps({"ANSIBLE_MODULE_ARGS": payload})


def _module_result(name, rc, stdout, stderr):
    try:
        data = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    except ValueError:
        raise AssertionError("module %s printed no JSON: rc=%s\nstdout=%s\nstderr=%s" % (name, rc, stdout, stderr))
    return ModuleResult(data, rc, stdout, stderr)


def run_module(name, args, check=False, diff=False, timeout=300, extra_env=None):
    """Run ``heracles.secrets.<name>`` with ``args``; return its parsed JSON result."""
    proc = subprocess.run(_module_cmd(name), input=_module_input(args, check, diff), capture_output=True, text=True,
                          env=env(extra_env), timeout=timeout, cwd=ROOT, check=False)
    return _module_result(name, proc.returncode, proc.stdout, proc.stderr)


def wait_or_kill(proc, timeout):
    """Wait for a background process; on timeout kill it (no orphan keeps a port or a file) and re-raise."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


class RunningModule:
    """A module started in the background by :func:`start_module`, as Ansible starts it.

    Input, output and errors go through unnamed temporary files, so the module never blocks on a full pipe
    while the test does something else (kill a node, poll progress). ``pid`` is the module's process.
    """

    def __init__(self, name, args, check=False, diff=False, extra_env=None):
        self.name = name
        self._files = [tempfile.TemporaryFile(mode="w+") for dummy in range(3)]
        stdin, self._stdout, self._stderr = self._files
        stdin.write(_module_input(args, check, diff))
        stdin.flush()
        stdin.seek(0)
        self.proc = subprocess.Popen(_module_cmd(name), stdin=stdin, stdout=self._stdout, stderr=self._stderr,
                                     text=True, env=env(extra_env), cwd=ROOT)
        self.started = time.time()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=300):
        """Wait for the module to exit; return its ModuleResult (kills it and raises on timeout)."""
        wait_or_kill(self.proc, timeout)
        out = []
        for handle in self._files[1:]:
            handle.seek(0)
            out.append(handle.read())
        for handle in self._files:
            handle.close()
        return _module_result(self.name, self.proc.returncode, out[0], out[1])


def start_module(name, args, check=False, diff=False, extra_env=None):
    """Start ``heracles.secrets.<name>`` in the background; ``.wait()`` returns what run_module would."""
    return RunningModule(name, args, check=check, diff=diff, extra_env=extra_env)


def port_free(port, host="127.0.0.1"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def free_base_port(nodes=3, step=10, low=20000, high=50000):
    """A base port whose API and cluster ports for every node are free (parallel runs don't collide)."""
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for dummy in range(200):
        base = rng.randrange(low, high, 100)
        ports = [base + i * step + j for i in range(nodes) for j in (0, 1)]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range found")


class ClusterHandle:
    """A LocalCluster plus the connection arguments every module call needs."""

    def __init__(self, base_dir, node_count=3, base_port=None):
        self.base_dir = str(base_dir)
        self.lc = LocalCluster(self.base_dir, node_count=node_count, base_port=base_port or free_base_port(node_count),
                               log_level="info")
        self.password = secrets.token_urlsafe(24)
        self.password_file = os.path.join(self.base_dir, "vault-pass")
        self.init_file = os.path.join(self.base_dir, "init.vault")

    @property
    def urls(self):
        return [n.api_addr for n in self.lc.nodes]

    @property
    def url(self):
        return self.urls[0]

    @property
    def ca_cert(self):
        return self.lc.ca_cert

    def start(self):
        self.lc.start()
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        return self

    def conn(self, **extra):
        """Connection + keystore args for a module call (root token from the init file)."""
        args = dict(url=self.url, nodes=self.urls[1:], ca_cert=self.ca_cert, init_file=self.init_file,
                    init_file_password_file=self.password_file, auth_method="init_file", retry_delay=0.5)
        args.update(extra)
        return args

    def init_material(self):
        return keystore.FileStore(self.init_file, self.password).read()

    @property
    def root_token(self):
        return self.init_material()["root_token"]

    def hvac(self, url=None, token=True):
        import hvac
        client = hvac.Client(url=url or self.leader(), verify=self.ca_cert)
        if token:
            client.token = self.root_token
        return client

    def leader(self):
        import requests
        for url in self.urls:
            try:
                info = requests.get(url + "/v1/sys/leader", verify=self.ca_cert, timeout=2).json()
            except Exception:  # noqa: BLE001
                continue
            if info.get("is_self"):
                return url
        return None

    def bootstrap(self, voters=None, timeout=60):
        """init -> unseal -> autopilot -> wait for all voters, through our own modules."""
        res = run_module("vault_init", self.conn(auth_method="none", secret_shares=3, secret_threshold=2))
        assert not res.failed, res
        res = run_module("vault_unseal", self.conn(auth_method="none"))
        assert not res.failed, res
        res = run_module("vault_raft", self.conn(autopilot=dict(server_stabilization_time="3s",
                                                                cleanup_dead_servers=False)))
        assert not res.failed, res
        self.wait_voters(voters or len(self.urls), timeout)
        return self

    def wait_voters(self, count, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = run_module("vault_status_info", self.conn())
            autopilot = last.get("autopilot") or {}
            if (len(last.get("voters", [])) >= count and autopilot.get("healthy")
                    and (autopilot.get("failure_tolerance") or 0) >= (count - 1) // 2):
                return last
            time.sleep(1)
        raise AssertionError("cluster did not reach %d healthy voters: %s" % (count, last))

    def stop(self):
        self.lc.destroy()


def find_leaks(needles, haystacks):
    """Return (needle-prefix, where) for every needle found in any haystack (str or file path)."""
    hits = []
    for where, text in haystacks:
        for needle in needles:
            if needle and needle in text:
                hits.append((needle[:6] + "...", where))
    return hits


def files_text(root):
    """(path, text) of every file under root, for leak searches."""
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            try:
                with open(path, "rb") as handle:
                    yield path, handle.read().decode("utf-8", "replace")
            except OSError:
                continue
