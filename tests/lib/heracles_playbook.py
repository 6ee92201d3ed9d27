"""Run this repository's playbooks for real against a test cluster, and read their recap."""

import json
import os
import re
import subprocess
import sys

from heracles_testlib import ROOT, env

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

    def run(self, playbook, *args, timeout=900):
        log = os.path.join(self.state_dir, "ansible-%d.log" % len(self.outputs))
        cmd = [ANSIBLE_PLAYBOOK, "-i", "inventories/local", "playbooks/" + playbook, "-e", "@" + self.vars_file]
        proc = subprocess.run(cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
                              env=env({"ANSIBLE_LOG_PATH": log, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}))
        self.outputs.append(("ansible-playbook %s %s" % (playbook, " ".join(args)), proc.stdout + proc.stderr))
        return proc


def recap(proc):
    """ok/changed/failed counts of the localhost recap line."""
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(ok=int(match.group(1)), changed=int(match.group(2)), failed=int(match.group(4)))
