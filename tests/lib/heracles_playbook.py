"""Run this repository's playbooks for real against a test cluster, and read their recap."""

import json
import os
import re
import subprocess
import sys
import tempfile

from heracles_testlib import ROOT, env, wait_or_kill

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def connection_vars(cluster):
    """heracles_vault_connection for a ClusterHandle (root token from its encrypted init file)."""
    return dict(url=cluster.url, nodes=cluster.urls[1:], ca_cert=cluster.ca_cert, init_store="file",
                init_file=cluster.init_file, init_file_password_file=cluster.password_file, auth_method="init_file")


class Runner:
    """Runs playbooks with one extra-vars file and keeps every output for leak searches."""

    def __init__(self, state_dir, extra_vars):
        self.state_dir = str(state_dir)
        self.vars_file = os.path.join(self.state_dir, "extra-vars.json")
        fd = os.open(self.vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(extra_vars, handle)
        self.outputs = []

    def command(self, playbook, args):
        """The ansible-playbook command line and environment for one run (its own log file)."""
        log = os.path.join(self.state_dir, "ansible-%d.log" % len(self.outputs))
        cmd = [ANSIBLE_PLAYBOOK, "-i", "inventories/local", "playbooks/" + playbook, "-e", "@" + self.vars_file]
        return cmd + list(args), env({"ANSIBLE_LOG_PATH": log, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"})

    def run(self, playbook, *args, timeout=900):
        cmd, run_env = self.command(playbook, args)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False, env=run_env)
        self.outputs.append(("ansible-playbook %s %s" % (playbook, " ".join(args)), proc.stdout + proc.stderr))
        return proc

    def start(self, playbook, *args):
        """Start the playbook in the background (output to files); ``.wait()`` returns what ``run`` would."""
        return RunningPlaybook(self, playbook, args)


class RunningPlaybook:
    """A playbook started by ``Runner.start``: ``running()``, ``wait(timeout)`` -> CompletedProcess."""

    def __init__(self, runner, playbook, args):
        self.runner = runner
        self.label = "ansible-playbook %s %s" % (playbook, " ".join(args))
        cmd, run_env = runner.command(playbook, args)
        self.runner.outputs.append((self.label, ""))  # reserves this run's log file name
        self._slot = len(self.runner.outputs) - 1
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     text=True, env=run_env)

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=900):
        wait_or_kill(self.proc, timeout)
        self._out.seek(0)
        self._err.seek(0)
        stdout, stderr = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        self.runner.outputs[self._slot] = (self.label, stdout + stderr)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, stdout, stderr)


def recap(proc):
    """ok/changed/failed counts of the localhost recap line."""
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(ok=int(match.group(1)), changed=int(match.group(2)), failed=int(match.group(4)))
