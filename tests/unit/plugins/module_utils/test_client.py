"""client.py: where connection settings come from, TLS verification, and token auth."""

import types

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod
from ansible_collections.heracles.secrets.plugins.module_utils.client import (
    authenticate, build_client, resolve, tls_verify,
)
from ansible_collections.heracles.secrets.plugins.module_utils.errors import ConfigError
from ansible_collections.heracles.secrets.plugins.module_utils.keystore import FileStore
from ansible_collections.heracles.secrets.plugins.module_utils.retry import LeaderFollowingAdapter

ALL_ENV = sorted(set(var for names in client_mod.ENV.values() for var in names))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No BAO_*/VAULT_* from the caller's shell, and a HOME without ~/.vault-token."""
    for var in ALL_ENV + ["HERACLES_INIT_FILE_PASSWORD_FILE"]:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# (id, option value, BAO_* value, VAULT_* value, expected); the default is "DEFAULT"
RESOLVE_CASES = [
    ("option-wins", "opt", "bao", "vault", "opt"),
    ("bao-beats-vault", None, "bao", "vault", "bao"),
    ("vault-env", None, None, "vault", "vault"),
    ("default", None, None, None, "DEFAULT"),
    ("empty-option-is-unset", "", "bao", None, "bao"),
    ("empty-env-is-unset", None, "", "vault", "vault"),
    ("all-empty-gives-default", "", "", "", "DEFAULT"),
]


@pytest.mark.parametrize("name", sorted(client_mod.ENV))
@pytest.mark.parametrize("option, bao, vault, expected", [c[1:] for c in RESOLVE_CASES],
                         ids=[c[0] for c in RESOLVE_CASES])
def test_resolve_precedence(monkeypatch, name, option, bao, vault, expected):
    bao_var, vault_var = client_mod.ENV[name]
    assert bao_var.startswith("BAO_") and vault_var.startswith("VAULT_")
    if bao is not None:
        monkeypatch.setenv(bao_var, bao)
    if vault is not None:
        monkeypatch.setenv(vault_var, vault)
    assert resolve({name: option}, name, "DEFAULT") == expected


def test_resolve_option_without_env_mapping(monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "https://ignored:8200")
    assert resolve({}, "timeout", 10) == 10
    assert resolve({"timeout": 5}, "timeout", 10) == 5


# (id, params, env, expected)
TLS_CASES = [
    ("default-verifies", {}, {}, True),
    ("ca-option", {"ca_cert": "/etc/ca.pem"}, {}, "/etc/ca.pem"),
    ("bao-cacert", {}, {"BAO_CACERT": "/bao/ca.pem", "VAULT_CACERT": "/vault/ca.pem"}, "/bao/ca.pem"),
    ("vault-cacert", {}, {"VAULT_CACERT": "/vault/ca.pem"}, "/vault/ca.pem"),
    ("option-beats-env", {"ca_cert": "/opt/ca.pem"}, {"VAULT_CACERT": "/vault/ca.pem"}, "/opt/ca.pem"),
    ("explicit-opt-out", {"validate_certs": False, "ca_cert": "/etc/ca.pem"}, {}, False),
    ("validate-true-no-ca", {"validate_certs": True}, {}, True),
]


@pytest.mark.parametrize("params, env, expected", [c[1:] for c in TLS_CASES], ids=[c[0] for c in TLS_CASES])
def test_tls_verify(monkeypatch, params, env, expected):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert tls_verify(params) == expected


# -- authenticate(auth_method=token) ------------------------------------------------------------

def fake_client():
    return types.SimpleNamespace(token=None)


def test_token_missing_everywhere_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        authenticate(fake_client(), {"auth_method": "token"})
    assert "No Vault token" in info.value.message
    assert "token_path" in info.value.hint


@pytest.mark.parametrize("source, expected", [
    ("option", "s.option"),
    ("bao-env", "s.bao"),
    ("vault-env", "s.vault"),
    ("token-path", "s.file"),
    ("home-file", "s.home"),
])
def test_token_sources(monkeypatch, clean_env, tmp_path, source, expected):
    params = {"auth_method": "token"}
    # every source below the chosen one is present too, so precedence is checked
    order = ["option", "bao-env", "vault-env", "token-path", "home-file"]
    present = order[order.index(source):]
    if "option" in present:
        params["token"] = "s.option"
    if "bao-env" in present:
        monkeypatch.setenv("BAO_TOKEN", "s.bao")
    if "vault-env" in present:
        monkeypatch.setenv("VAULT_TOKEN", "s.vault")
    if "token-path" in present:
        path = tmp_path / "token"
        path.write_text("s.file\n")
        params["token_path"] = str(path)
    if "home-file" in present:
        (clean_env / ".vault-token").write_text("  s.home\n")
    client = fake_client()
    assert authenticate(client, params) is client
    assert client.token == expected


def test_token_is_the_default_method(monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s.env")
    client = authenticate(fake_client(), {})
    assert client.token == "s.env"


def test_unreadable_token_path(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read token_path"):
        authenticate(fake_client(), {"auth_method": "token", "token_path": str(tmp_path / "missing")})


def test_auth_none_leaves_the_token_alone(monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s.env")
    client = authenticate(fake_client(), {"auth_method": "none"})
    assert client.token is None


@pytest.mark.parametrize("method", ["kubernetes", "approle"])
def test_role_based_auth_needs_role(method):
    with pytest.raises(ConfigError, match="needs role"):
        authenticate(fake_client(), {"auth_method": method})


def test_init_file_auth_uses_the_stored_root_token(tmp_path):
    path = str(tmp_path / "init.vault")
    FileStore(path, "pw").write({"version": 1, "root_token": "s.root", "unseal_keys_b64": ["k"]})
    client = authenticate(fake_client(), {"auth_method": "init_file", "init_file": path, "init_file_password": "pw"})
    assert client.token == "s.root"


def test_init_file_auth_without_root_token(tmp_path):
    path = str(tmp_path / "init.vault")
    FileStore(path, "pw").write({"version": 1, "root_token": None, "unseal_keys_b64": ["k"]})
    with pytest.raises(ConfigError, match="no root token"):
        authenticate(fake_client(), {"auth_method": "init_file", "init_file": path, "init_file_password": "pw"})


# -- build_client (no network: login=False, follow_leader=False) -----------------------------------

def test_build_client_wires_adapter_tls_and_retries(monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "https://node1.example:8200/")
    params = {"ca_cert": "/etc/ca.pem", "nodes": ["https://node1.example:8200", "https://node2.example:8200"],
              "retries": 2, "retry_delay": 0.5, "timeout": 7, "follow_leader": False}
    client = build_client(params, login=False)
    adapter = client.adapter
    assert isinstance(adapter, LeaderFollowingAdapter)
    assert adapter.base_uri == "https://node1.example:8200"
    assert adapter.nodes == ["https://node2.example:8200"]  # the configured address is not repeated
    assert adapter.follow_leader is False
    assert adapter.policy.delays() == [0.5, 1.0]
    assert adapter.session.verify == "/etc/ca.pem"
    assert adapter._kwargs["timeout"] == 7
    assert client.token == ""  # never picked up from the environment behind authenticate()'s back


def test_build_client_pinned_url_does_not_follow_the_leader():
    client = build_client({"follow_leader": True}, url="https://node3.example:8200", login=False)
    assert client.adapter.base_uri == "https://node3.example:8200"
    assert client.adapter.follow_leader is False


def test_every_auth_method_choice_is_a_registered_login_and_back():
    from ansible_collections.heracles.secrets.plugins.module_utils import client as client_module

    assert sorted(client_module.CONNECTION_SPEC["auth_method"]["choices"]) == sorted(client_module.LOGINS)
    assert all(isinstance(login, client_module.Login) for login in client_module.LOGINS.values())
