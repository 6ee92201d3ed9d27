"""The server HCL the platform hands to the Helm chart, started for real with ``bao server``.

The HCL is taken from the chart values the program registered (not re-rendered), then made to run on this
machine the way the chart makes it run in a pod: the chart's sed placeholders are substituted, in-pod paths
point at a generated TLS certificate and temporary directories, the listener binds a free loopback port.
Two stanzas need a cluster and are swapped out: the awskms seal (not built into OpenBao 2.7; Shamir instead)
and the Kubernetes service registration. Peers in ``retry_join`` point at a closed loopback port (no DNS).
The server must come up and answer ``sys/seal-status``, and must not warn about an unknown field.
"""

import json
import os
import re
import ssl
import subprocess
import time
import urllib.request

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import LocalCluster, tail
from heracles_testlib import free_base_port
from heracles_pulumi.server_config import CHART_PLACEHOLDERS, get_flavour
from runs import platform

START_TIMEOUT = 20.0
SEAL = re.compile(r'^seal "awskms" \{\n(?:  .*\n)+\}\n', re.MULTILINE)
SERVICE_REGISTRATION = 'service_registration "kubernetes" {}\n'
RETRY_JOIN_PEER = re.compile(r"https://[a-z0-9-]+-\d+\.[a-z0-9-]+-internal:8200")
# The chart replaces these words with the pod's values before the server starts (server-statefulset.yaml).
POD_VALUES = {"HOST_IP": "127.0.0.1", "POD_IP": "127.0.0.1", "HOSTNAME": "vault-0", "API_ADDR": "", "TRANSIT_ADDR": "",
              "RAFT_ADDR": ""}


def localize(hcl, flavour, tls, data_dir, audit_dir, api_port, closed_port):
    """The chart's HCL as a pod would run it, mapped onto this machine (see the module docstring)."""
    assert len(SEAL.findall(hcl)) == 1, "expected exactly one awskms seal stanza:\n" + hcl
    assert hcl.count(SERVICE_REGISTRATION) == 1
    text = SEAL.sub("", hcl).replace(SERVICE_REGISTRATION, "")
    for word in CHART_PLACEHOLDERS:
        text = text.replace(word, POD_VALUES[word])
    home = get_flavour(flavour).home
    for name, local in (("tls.crt", tls["cert"]), ("tls.key", tls["key"]), ("ca.crt", tls["ca"])):
        text = text.replace("%s/userconfig/vault-tls/%s" % (home, name), local)
    text = text.replace('"%s/data"' % home, '"%s"' % data_dir).replace('"%s/audit/' % home, '"%s/' % audit_dir)
    text = text.replace('"[::]:8200"', '"127.0.0.1:%d"' % api_port).replace('"[::]:8201"', '"127.0.0.1:%d"' % (api_port + 1))
    text = RETRY_JOIN_PEER.sub("https://localhost:%d" % closed_port, text)
    leftover = re.findall(r'"(?:/vault|/openbao)/[^"]*"', text)
    assert not leftover, "in-pod paths left after localizing: %s" % leftover
    return text


def _seal_status(port, ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen("https://127.0.0.1:%d/v1/sys/seal-status" % port, context=context, timeout=2) as resp:
        return json.loads(resp.read().decode())


def start_and_probe(binary, config_file, workdir, port, ca_file):
    """Start ``bao server``; return its seal status and log; fail with the log if it exits or never answers."""
    log_path = os.path.join(workdir, "server.log")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": workdir}
    for prefix in ("BAO_", "VAULT_"):
        env.update({prefix + "API_ADDR": "https://127.0.0.1:%d" % port,
                    prefix + "CLUSTER_ADDR": "https://127.0.0.1:%d" % (port + 1),
                    prefix + "RAFT_NODE_ID": "vault-0"})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "server", "-config", config_file], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir, env=env)
    try:
        deadline = time.time() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail("bao server exited with %s on the rendered config; log:\n%s" % (proc.returncode, tail(log_path, 40)))
            try:
                status = _seal_status(port, ca_file)
                break
            except (OSError, ValueError):
                if time.time() > deadline:
                    pytest.fail("bao server did not answer sys/seal-status in %ss; log:\n%s"
                                % (START_TIMEOUT, tail(log_path, 40)))
                time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(log_path) as handle:
        return status, handle.read()


@pytest.mark.parametrize("variant", ["stack", "openbao", "k8s-join"])
def test_rendered_server_config_starts_a_real_server(stack, variant, tmp_path):
    run = platform(stack, variant)
    flavour = run.config["heracles-platform:vaultFlavour"]
    (release,) = [res for res in run.of_type("kubernetes:helm.sh/v3:Release") if res.inputs["chart"] == flavour]
    hcl = release.inputs["values"]["server"]["ha"]["raft"]["config"]

    base = free_base_port(nodes=2)
    cluster = LocalCluster(str(tmp_path / "pki"), node_count=1, base_port=base)
    cluster.ensure_dirs()
    cluster.ensure_pki()
    node = cluster.nodes[0]
    tls = {"cert": node.cert, "key": node.key, "ca": cluster.ca_cert}
    config = localize(hcl, flavour, tls, node.data_dir, node.audit_dir, base, closed_port=base + 10)
    config_file = tmp_path / "server.hcl"
    config_file.write_text(config)

    status, log = start_and_probe(cluster.bao_binary, str(config_file), str(tmp_path), base, cluster.ca_cert)
    assert status["type"] == "shamir" and status["initialized"] is False and status["sealed"] is True
    unknown = re.findall(r"unknown or unsupported field (\S+)", log)
    allowed = ["disable_mlock"] if get_flavour(flavour).disable_mlock else []  # OpenBao removed mlock; Vault needs it
    rejected = [field for field in unknown if field not in allowed]
    assert rejected == [], "the server ignores %s in the rendered config (misplaced or misspelt); log:\n%s" % (
        rejected, log)
    if variant == "stack":
        assert "raft retry join initiated" in log  # the retry_join blocks were read


def test_localize_refuses_a_config_without_the_seal_it_must_swap():
    with pytest.raises(AssertionError):
        localize('storage "raft" {}\n' + SERVICE_REGISTRATION, "vault", {}, "/tmp/d", "/tmp/a", 1, 2)
