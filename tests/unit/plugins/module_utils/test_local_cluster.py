"""local_cluster.py: the files of the embedded cluster (config, PKI, directories) and its plan.

No server is started here; tests/integration runs real clusters.
"""

import ipaddress
import os
import re
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import (
    LocalCluster, LocalClusterError,
)

BASE_PORT = 18200  # nothing listens here: no server is started in unit tests


def make_cluster(tmp_path, **kwargs):
    kwargs.setdefault("base_port", BASE_PORT)
    kwargs.setdefault("bao_binary", "/bin/true")
    return LocalCluster(str(tmp_path / "cluster"), **kwargs)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def load_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def hcl_block(text, opener):
    """The body of the top-level block that starts with ``opener`` (braces balanced)."""
    start = text.index(opener + " {")
    depth, i = 0, text.index("{", start)
    for i in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[text.index("{", start) + 1:i]
    raise AssertionError("unbalanced block %s" % opener)


# -- construction -----------------------------------------------------------------------------

def test_nodes_and_ports(tmp_path):
    cluster = make_cluster(tmp_path, node_count=3, port_step=10)
    assert [n.name for n in cluster.nodes] == ["node1", "node2", "node3"]
    assert [(n.api_port, n.cluster_port) for n in cluster.nodes] == [(18200, 18201), (18210, 18211), (18220, 18221)]
    assert [n.api_addr for n in cluster.nodes] == [
        "https://127.0.0.1:18200", "https://127.0.0.1:18210", "https://127.0.0.1:18220"]
    assert [n.hostname for n in cluster.nodes] == [
        "node1.heracles.local", "node2.heracles.local", "node3.heracles.local"]
    assert cluster.bao_binary == "/bin/true"


@pytest.mark.parametrize("kwargs, message", [
    ({"node_count": 0}, "node_count"),
    ({"port_step": 1}, "port_step"),
])
def test_invalid_layout(tmp_path, kwargs, message):
    with pytest.raises(LocalClusterError, match=message):
        make_cluster(tmp_path, **kwargs)


# -- render_config ------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 1, 2])
def test_render_config(tmp_path, index):
    cluster = make_cluster(tmp_path, performance_multiplier=5, autopilot_reconcile_interval="7s")
    node = cluster.nodes[index]
    others = [n for n in cluster.nodes if n is not node]
    text = cluster.render_config(node)

    assert text.count("{") == text.count("}")
    assert 'api_addr     = "%s"' % node.api_addr in text
    assert 'cluster_addr = "%s"' % node.cluster_addr in text
    assert "disable_standby_reads = false" in text

    listener = hcl_block(text, 'listener "tcp"')
    assert 'address         = "127.0.0.1:%d"' % node.api_port in listener
    assert 'cluster_address = "127.0.0.1:%d"' % node.cluster_port in listener
    assert 'tls_cert_file   = "%s"' % node.cert in listener
    assert 'tls_key_file    = "%s"' % node.key in listener
    assert 'tls_min_version = "tls12"' in listener

    raft = hcl_block(text, 'storage "raft"')
    assert 'path                         = "%s"' % node.data_dir in raft
    assert 'node_id                      = "%s"' % node.name in raft
    assert re.search(r"^\s*performance_multiplier\s*=\s*5$", raft, re.M)
    assert re.search(r'^\s*autopilot_reconcile_interval\s*=\s*"7s"$', raft, re.M)
    outside = text.replace(raft, "")
    for key in ("node_id", "performance_multiplier", "autopilot_reconcile_interval", "retry_join"):
        assert key not in outside, "%s must live inside storage \"raft\"" % key

    joins = re.findall(r"retry_join \{(.*?)\}", raft, re.S)
    assert len(joins) == len(others)
    for other, join in zip(others, joins):
        assert 'leader_api_addr       = "%s"' % other.api_addr in join
        assert 'leader_ca_cert_file   = "%s"' % cluster.ca_cert in join
        assert 'leader_tls_servername = "%s.heracles.local"' % other.name in join
    assert node.api_addr not in "".join(joins)


def test_render_config_single_node_has_no_retry_join(tmp_path):
    cluster = make_cluster(tmp_path, node_count=1)
    assert "retry_join" not in cluster.render_config(cluster.nodes[0])


def test_render_config_options(tmp_path):
    cluster = make_cluster(tmp_path, disable_standby_reads=True, cluster_name="lab", log_level="debug")
    text = cluster.render_config(cluster.nodes[0])
    assert "disable_standby_reads = true" in text
    assert 'cluster_name = "lab"' in text
    assert 'log_level    = "debug"' in text


# -- ensure_pki -------------------------------------------------------------------------------------

@pytest.fixture
def pki_cluster(tmp_path):
    cluster = make_cluster(tmp_path)
    cluster.ensure_dirs()
    assert cluster.ensure_pki() is True
    return cluster


def test_pki_files_and_modes(pki_cluster):
    assert mode(pki_cluster.ca_key) == 0o600
    assert mode(pki_cluster.ca_cert) == 0o644
    for node in pki_cluster.nodes:
        assert mode(node.key) == 0o600
        assert mode(node.cert) == 0o644
    assert sorted(os.listdir(pki_cluster.tls_dir)) == sorted(
        ["ca.pem", "ca-key.pem"] + ["node%d.pem" % i for i in (1, 2, 3)] + ["node%d-key.pem" % i for i in (1, 2, 3)])


def test_ca_certificate(pki_cluster):
    ca = load_cert(pki_cluster.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    ca.verify_directly_issued_by(ca)  # self-signed


@pytest.mark.parametrize("index", [0, 1, 2])
def test_node_certificate(pki_cluster, index):
    node = pki_cluster.nodes[index]
    ca = load_cert(pki_cluster.ca_cert)
    cert = load_cert(node.cert)

    cert.verify_directly_issued_by(ca)  # raises if not signed by our CA
    assert cert.issuer == ca.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == ["localhost", "node%d.heracles.local" % (index + 1)]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize("index", [0, 1, 2])
def test_node_key_matches_certificate(pki_cluster, index):
    node = pki_cluster.nodes[index]
    with open(node.key, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == load_cert(node.cert).public_key().public_numbers()


def test_ensure_pki_is_idempotent(pki_cluster):
    before = {n: read_bytes(os.path.join(pki_cluster.tls_dir, n)) for n in os.listdir(pki_cluster.tls_dir)}
    assert pki_cluster.ensure_pki() is False
    after = {n: read_bytes(os.path.join(pki_cluster.tls_dir, n)) for n in os.listdir(pki_cluster.tls_dir)}
    assert after == before


def test_ensure_pki_reissues_a_missing_node_cert_only(pki_cluster):
    ca_before = read_bytes(pki_cluster.ca_cert)
    node2_before = read_bytes(pki_cluster.nodes[1].cert)
    os.unlink(pki_cluster.nodes[0].key)
    assert pki_cluster._pki_stale() == ["node1"]
    assert pki_cluster.ensure_pki() is True
    assert read_bytes(pki_cluster.ca_cert) == ca_before
    assert read_bytes(pki_cluster.nodes[1].cert) == node2_before
    load_cert(pki_cluster.nodes[0].cert).verify_directly_issued_by(load_cert(pki_cluster.ca_cert))


def test_ensure_pki_reissues_node_certs_when_the_names_change(pki_cluster, tmp_path):
    renamed = make_cluster(tmp_path, domain="lab.example")
    assert renamed._pki_stale() == ["node1", "node2", "node3"]  # the CA is kept
    assert renamed.ensure_pki() is True
    san = load_cert(renamed.nodes[0].cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "node1.lab.example" in san.get_values_for_type(x509.DNSName)


# -- plan --------------------------------------------------------------------------------------------

def _kinds(pending):
    return sorted(set(item.split(" ", 1)[0] for item in pending))


def test_plan_on_a_fresh_directory(tmp_path):
    cluster = make_cluster(tmp_path)
    pending = cluster.plan()
    assert _kinds(pending) == ["certificate", "config", "directory", "start"]
    assert "directory %s" % cluster.base_dir in pending
    assert "certificate ca" in pending
    assert ["config node1", "config node2", "config node3"] == [p for p in pending if p.startswith("config")]
    assert ["start node1", "start node2", "start node3"] == [p for p in pending if p.startswith("start")]
    assert not os.path.exists(cluster.base_dir), "plan() must not change anything"


def test_plan_after_files_are_in_place(tmp_path):
    cluster = make_cluster(tmp_path)
    assert cluster.ensure_dirs() is True
    assert cluster.ensure_pki() is True
    assert [n.name for n in cluster.ensure_configs()] == ["node1", "node2", "node3"]
    assert cluster.plan() == ["start node1", "start node2", "start node3"]  # only the processes are left
    # and each step is idempotent
    assert cluster.ensure_dirs() is False
    assert cluster.ensure_pki() is False
    assert cluster.ensure_configs() == []
    for node in cluster.nodes:
        assert mode(node.dir) == 0o700 and mode(node.data_dir) == 0o700 and mode(node.audit_dir) == 0o700
        assert mode(node.config) == 0o600


def test_plan_sees_config_drift_and_loose_directories(tmp_path):
    cluster = make_cluster(tmp_path)
    cluster.ensure_dirs()
    cluster.ensure_pki()
    cluster.ensure_configs()
    os.chmod(cluster.nodes[1].data_dir, 0o755)
    tuned = make_cluster(tmp_path, performance_multiplier=3)
    pending = tuned.plan()
    assert "directory %s" % tuned.nodes[1].data_dir in pending
    assert [p for p in pending if p.startswith("config")] == ["config node1", "config node2", "config node3"]
    assert not any(p.startswith("certificate") for p in pending)


@pytest.mark.parametrize("state, expected", [
    ("stopped", []),
    ("absent", ["remove {base}"]),
])
def test_plan_stop_and_absent_with_nothing_running(tmp_path, state, expected):
    cluster = make_cluster(tmp_path)
    cluster.ensure_dirs()
    assert cluster.plan(state) == [e.format(base=cluster.base_dir) for e in expected]


def test_plan_absent_on_a_missing_directory_is_empty(tmp_path):
    assert make_cluster(tmp_path).plan("absent") == []
