"""Input guards that refuse bad input before any request (tests/reliability/test_bad_input.py runs them for real).

* kv.normalize_path with a prefix: the guard behind vault_kv_seed's and vault_kv_rotate's ``prefix``;
* kv.missing_password_policies: a misspelt password policy is found before the first write;
* client.check_url: an address without a scheme is refused with a message that says how to write it;
* client.skip_verify_set: which BAO_/VAULT_SKIP_VERIFY value VaultModule warns about (it is never honoured);
* LocalCluster: ports beyond 65535 and a host name as bind_address are refused before anything is created.
"""

import json
import os
import subprocess
import sys

import hvac.exceptions
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import client, kv
from ansible_collections.heracles.secrets.plugins.module_utils.errors import ConfigError
from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import LocalCluster, LocalClusterError

# tests/unit/plugins/module_utils/<this file> -> the repository root
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".collections")


@pytest.mark.parametrize("path, prefix, refusal", [
    ("apps/payments/db", "apps", None),
    ("apps", "apps", None),
    ("apps/payments/db", "apps/", None),
    ("apps/payments/db", "/apps/payments", None),
    ("apps/payments/db", None, None),
    ("infra/root-ca", "apps", "'infra/root-ca' is outside the allowed prefix 'apps'"),
    ("apps2/x", "apps", "outside the allowed prefix 'apps'"),
    ("app", "apps", "outside the allowed prefix 'apps'"),
    ("apps/../infra/x", "apps", "'..' segment"),
    ("apps//x", "apps", "empty, '.' or '..' segment"),
    ("/apps/x", "apps", "relative to the mount"),
], ids=["inside", "the-prefix-itself", "prefix-with-slash", "deeper-prefix", "no-prefix", "outside",
        "sibling-sharing-the-start", "shorter", "dot-dot", "empty-segment", "absolute"])
def test_normalize_path_prefix(path, prefix, refusal):
    if refusal is None:
        assert kv.normalize_path(path, prefix) == path
    else:
        with pytest.raises(kv.SeedInputError) as info:
            kv.normalize_path(path, prefix)
        assert refusal in str(info.value)


class PolicyAdapter:
    """Answers ``GET .../password/<name>/generate`` like Vault: a password, or 404 for an unknown policy."""

    def __init__(self, known):
        self.known = known
        self.calls = []

    def get(self, url):
        self.calls.append(url)
        name = url.split("/")[-2]
        if name not in self.known:
            raise hvac.exceptions.InvalidPath("policy does not exist")
        return {"data": {"password": "generated"}}


class PolicyClient:
    def __init__(self, known):
        self.adapter = PolicyAdapter(known)


def test_missing_password_policies_asks_once_per_name():
    fake = PolicyClient({"heracles-strong"})
    missing = kv.missing_password_policies(fake, ["heracles-strong", "typo", "heracles-strong", "typo"])
    assert missing == ["typo"]
    assert fake.adapter.calls == ["/v1/sys/policies/password/heracles-strong/generate",
                                  "/v1/sys/policies/password/typo/generate"]
    assert kv.missing_password_policies(fake, []) == []


class ForbiddingAdapter(PolicyAdapter):
    def get(self, url):
        raise hvac.exceptions.Forbidden("permission denied")


def test_missing_password_policies_lets_other_errors_through():
    fake = PolicyClient(set())
    fake.adapter = ForbiddingAdapter(set())
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.missing_password_policies(fake, ["heracles-strong"])


@pytest.mark.parametrize("url, ok", [
    ("https://127.0.0.1:8200", True),
    ("http://127.0.0.1:8200", True),
    ("HTTPS://vault.example.com", True),
    ("127.0.0.1:8200", False),
    ("vault.example.com", False),
    ("ftp://vault.example.com", False),
    ("https//vault.example.com", False),
], ids=["https", "http", "upper-case", "no-scheme", "host-only", "other-scheme", "missing-colon"])
def test_check_url(url, ok):
    if ok:
        assert client.check_url(url) == url
    else:
        with pytest.raises(ConfigError) as info:
            client.check_url(url, "nodes entry")
        assert "nodes entry %r is not a URL with a scheme" % url in str(info.value)
        assert "https://127.0.0.1:8200" in str(info.value)


@pytest.mark.parametrize("variables, expect", [
    ({}, None),
    ({"VAULT_SKIP_VERIFY": "1"}, "VAULT_SKIP_VERIFY"),
    ({"VAULT_SKIP_VERIFY": "true"}, "VAULT_SKIP_VERIFY"),
    ({"BAO_SKIP_VERIFY": "yes", "VAULT_SKIP_VERIFY": "1"}, "BAO_SKIP_VERIFY"),
    ({"VAULT_SKIP_VERIFY": "0"}, None),
    ({"VAULT_SKIP_VERIFY": "false"}, None),
    ({"VAULT_SKIP_VERIFY": ""}, None),
], ids=["unset", "one", "true", "bao-first", "zero", "false", "empty"])
def test_skip_verify_set(monkeypatch, variables, expect):
    for var in client.SKIP_VERIFY_ENV:
        monkeypatch.delenv(var, raising=False)
    for var, value in variables.items():
        monkeypatch.setenv(var, value)
    assert client.skip_verify_set() == expect
    assert client.tls_verify(dict(validate_certs=True, ca_cert="/ca.pem")) == "/ca.pem"  # never honoured


@pytest.mark.parametrize("kwargs, expect", [
    (dict(base_port=65530), "needs ports 65530-65551"),
    (dict(base_port=0), "needs ports 0-21"),
    (dict(base_port=65500, node_count=5, port_step=10), "needs ports 65500-65541"),
    (dict(bind_address="localhost"), "bind_address 'localhost' must be an IP address"),
    (dict(bind_address="127.0.0.1.5"), "must be an IP address"),
], ids=["beyond-65535", "port-zero", "five-nodes", "host-name", "not-an-address"])
def test_local_cluster_refuses_bad_addresses_before_creating_anything(tmp_path, kwargs, expect):
    base = str(tmp_path / "cluster")
    with pytest.raises(LocalClusterError) as info:
        LocalCluster(base, bao_binary="/bin/true", **kwargs)
    assert expect in str(info.value)
    assert not os.path.exists(base)


def test_local_cluster_accepts_the_highest_fitting_port(tmp_path):
    cluster = LocalCluster(str(tmp_path / "c"), base_port=65514, bao_binary="/bin/true")
    assert [n.cluster_port for n in cluster.nodes][-1] == 65535


def test_vault_kv_rotate_prefix_refuses_before_connecting():
    """The module fails on a path outside ``prefix`` without a request (the URL points at nothing)."""
    args = dict(url="https://127.0.0.1:1", mount="kv-prod", prefix="apps", force=True, destroy_versions=["previous"],
                secrets={"apps/payments/db": {"password": "heracles-strong"}, "infra/root-ca": {"key": "heracles-strong"}})
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.heracles.secrets.plugins.modules.vault_kv_rotate"],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["failed"] is True
    assert result["msg"] == "secret path 'infra/root-ca' is outside the allowed prefix 'apps'; nothing was changed"
