"""errors.py: every failure maps to a message that says what happened and a hint that says what to do."""

import hvac.exceptions as hvac_exc
import pytest
import requests

from ansible_collections.heracles.secrets.plugins.module_utils import errors
from ansible_collections.heracles.secrets.plugins.module_utils.errors import (
    ConfigError, HeraclesError, KeystoreError, QuorumLostError, SealedError, UnreachableError, describe,
    is_no_leader, join_hint,
)

# (id, exception, substrings of the message, substrings of the hint; None = no hint)
DESCRIBE_CASES = [
    ("tls-unknown-ca", requests.exceptions.SSLError("certificate verify failed: unable to get local issuer"),
     ["TLS verification failed", "certificate verify failed"], ["ca_cert", "VAULT_CACERT"]),
    ("tls-hostname", requests.exceptions.SSLError("hostname 'vault.example' doesn't match 'node1.heracles.local'"),
     ["TLS hostname mismatch"], ["SANs"]),
    ("tls-cut-mid-request", requests.exceptions.SSLError("Caused by SSLError(SSLEOFError(8, 'EOF occurred in violation "
                                                         "of protocol (_ssl.c:2427)'))"),
     ["cannot connect", "EOF occurred"], ["server is running"]),
    ("connection-refused", requests.exceptions.ConnectionError("Connection refused"),
     ["cannot connect", "Connection refused"], ["server is running"]),
    ("timeout", requests.exceptions.ReadTimeout("read timed out"),
     ["cannot connect", "read timed out"], ["server is running"]),
    ("sealed-503", hvac_exc.VaultDown(errors=["Vault is sealed"]),
     ["sealed", "Vault is sealed"], ["vault_unseal"]),
    ("not-initialised-501", hvac_exc.VaultNotInitialized(errors=["Vault is not initialized"]),
     ["not initialised"], ["vault_init"]),
    ("forbidden-403", hvac_exc.Forbidden(errors=["1 error occurred: permission denied"]),
     ["permission denied"], ["token"]),
    ("unauthorized-401", hvac_exc.Unauthorized(errors=["missing client token"]),
     ["not authenticated", "missing client token"], ["token"]),
    ("invalid-request-400", hvac_exc.InvalidRequest(errors=["invalid key share"]),
     ["rejected the request", "invalid key share"], ["unchanged"]),
    ("invalid-path-404", hvac_exc.InvalidPath(errors=["no handler for route"]),
     ["path not found"], ["mount"]),
    ("rate-limited-429", hvac_exc.RateLimitExceeded(errors=["request path kv/: rate limit quota exceeded"]),
     ["rate limited"], ["rate-limit"]),
    ("quorum-lost-500", hvac_exc.InternalServerError(errors=["local node not active but active cluster node not found"]),
     ["quorum lost", "active cluster node not found"], ["majority", "peers.json"]),
    ("quorum-lost-502", hvac_exc.BadGateway(errors=["no leader"]),
     ["quorum lost"], ["majority"]),
    ("server-error-500", hvac_exc.InternalServerError(errors=["storage: disk full"]),
     ["server error", "disk full"], ["server log"]),
    ("other-vault-error", hvac_exc.PreconditionFailed(errors=["index not yet replicated"]),
     ["index not yet replicated"], None),
    ("typed-error-kept", SealedError("Every reachable node is sealed", errors.SEALED_HINT),
     ["Every reachable node is sealed"], ["vault_unseal"]),
    ("foreign-exception", ValueError("unexpected shape"),
     ["ValueError", "unexpected shape"], None),
]


@pytest.mark.parametrize("exc, in_message, in_hint", [c[1:] for c in DESCRIBE_CASES],
                         ids=[c[0] for c in DESCRIBE_CASES])
def test_describe(exc, in_message, in_hint):
    message, hint = describe(exc)
    for text in in_message:
        assert text in message
    if in_hint is None:
        assert hint is None
    else:
        for text in in_hint:
            assert text in hint


@pytest.mark.parametrize("what, url, expected_start", [
    (None, None, "Vault request failed: "),
    (None, "https://127.0.0.1:8200", "Vault request failed at https://127.0.0.1:8200: "),
    ("Reading the unseal keys", None, "Reading the unseal keys failed: "),
    ("Unsealing", "https://127.0.0.1:8210", "Unsealing failed at https://127.0.0.1:8210: "),
])
def test_describe_names_what_and_where(what, url, expected_start):
    message = describe(hvac_exc.VaultDown(errors=["Vault is sealed"]), url=url, what=what)[0]
    assert message.startswith(expected_start)


def test_describe_shortens_long_transport_errors():
    message = describe(requests.exceptions.ConnectionError("x" * 1000 + "\n   tail"))[0]
    assert len(message) < 400
    assert message.endswith("...)")


@pytest.mark.parametrize("exc, expected", [
    (hvac_exc.InternalServerError(errors=["local node not active but active cluster node not found"]), True),
    (hvac_exc.InternalServerError(errors=["raft is in the process of electing a leader"]), True),
    (hvac_exc.InternalServerError(errors=["Leadership lost while committing log"]), True),
    (hvac_exc.BadGateway(errors=["No leader elected"]), True),
    (hvac_exc.InternalServerError(errors=["storage: disk full"]), False),
    (hvac_exc.InternalServerError(), False),
    (ValueError("node not active"), True),
], ids=["not-active", "electing", "leadership-lost", "no-leader", "disk-full", "empty", "plain-text"])
def test_is_no_leader(exc, expected):
    assert is_no_leader(exc) is expected


@pytest.mark.parametrize("cls", [HeraclesError, ConfigError, KeystoreError, QuorumLostError, SealedError,
                                 UnreachableError])
def test_hierarchy_is_flat_and_str_includes_hint(cls):
    exc = cls("Cannot read the init file.", "Point init_file at it")
    assert isinstance(exc, HeraclesError)
    assert cls is HeraclesError or cls.__bases__ == (HeraclesError,)
    assert str(exc) == "Cannot read the init file. Point init_file at it"
    assert (exc.message, exc.hint) == ("Cannot read the init file.", "Point init_file at it")
    assert describe(exc) == ("Cannot read the init file.", "Point init_file at it")


def test_str_without_hint_is_the_message():
    assert str(ConfigError("bad input")) == "bad input"


@pytest.mark.parametrize("message, hint, expected", [
    ("Cannot read the init file", "Point init_file at it", "Cannot read the init file. Point init_file at it"),
    ("Cannot read the init file.", "Point init_file at it", "Cannot read the init file. Point init_file at it"),
    ("Cannot read the init file. ", " Point init_file at it", "Cannot read the init file. Point init_file at it"),
    ("Cannot read the init file", None, "Cannot read the init file"),
    ("Cannot read the init file.", "", "Cannot read the init file."),
], ids=["plain", "message-with-period", "stray-spaces", "no-hint", "empty-hint"])
def test_join_hint_puts_one_period_between(message, hint, expected):
    assert join_hint(message, hint) == expected
    assert str(HeraclesError(message, hint)) == expected
