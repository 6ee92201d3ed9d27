# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One flat exception hierarchy and one place that turns hvac/HTTP errors into
messages that say what went wrong *and what to do*.

Every module calls :func:`describe` (through ``VaultModule.fail_from``) so an
operator under pressure reads the same advice whichever module failed.
Nothing here ever formats a request body: exceptions from hvac carry the
server's error strings only, never the payload we sent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - reported by VaultModule
    requests = None
    HAS_REQUESTS = False

try:
    import hvac.exceptions as hvac_exc
    HAS_HVAC = True
except ImportError:  # pragma: no cover - reported by VaultModule
    hvac_exc = None
    HAS_HVAC = False


def join_hint(message, hint):
    """``"<message>. <hint>"`` -- one period between them however the message ends; the message alone without a hint."""
    if not hint:
        return message
    return "%s. %s" % (message.rstrip().rstrip("."), hint.strip())


class HeraclesError(Exception):
    """Base class: ``hint`` says what the operator should do next."""

    def __init__(self, message, hint=None):
        super(HeraclesError, self).__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return join_hint(self.message, self.hint)


class ConfigError(HeraclesError):
    """Bad module input; raised before anything is sent to Vault."""


class KeystoreError(HeraclesError):
    """The encrypted init/keys destination cannot be read or written."""


class QuorumLostError(HeraclesError):
    """No node answers as active: the raft cluster has no leader."""


class SealedError(HeraclesError):
    """Every reachable node is sealed."""


class UnreachableError(HeraclesError):
    """No configured node answered at the network/TLS level."""


QUORUM_HINT = ("The raft cluster has no leader: fewer than a majority of voters are up and unsealed. "
               "Start or unseal the missing nodes (playbooks/unseal-recovery.yml, or bootstrap.yml on a new cluster); "
               "if nodes are lost for good, follow the 'lost quorum' recovery in README (peers.json). Nothing was changed")
SEALED_HINT = ("Unseal the node(s) with playbooks/bootstrap.yml or heracles.secrets.vault_unseal "
               "(keys are read from the encrypted init file); with auto-unseal check that the KMS key is reachable")
NOT_INIT_HINT = "Initialise the cluster first: run playbooks/bootstrap.yml (heracles.secrets.vault_init)"
TOKEN_HINT = ("The token is missing, expired or lacks a policy for this path. Pass a valid token "
              "(option token, VAULT_TOKEN, token_path, or auth_method=init_file for bootstrap) with the policy this task needs. "
              "With auth_method=init_file (the root token from the init material) it means the init material does not "
              "match this cluster's data: after a forced restore from another cluster use that cluster's init material "
              "(restore.yml writes it in place; docs/backups.md)")

_NO_LEADER = re.compile(r"active cluster node not found|no leader|local node not active|raft is in the process|"
                        r"leadership lost|node not active", re.I)


def _server_errors(exc):
    errors = getattr(exc, "errors", None)
    if not errors:
        return str(exc) or exc.__class__.__name__
    if isinstance(errors, (list, tuple)):
        return "; ".join(str(e) for e in errors)
    return str(errors)


_TLS_SETUP = ("certificate verify failed", "certificate_verify_failed", "hostname", "doesn't match", "not valid for",
              "wrong_version_number", "wrong version number", "unknown ca", "bad certificate", "self signed",
              "self-signed", "unable to get local issuer")


def is_tls_setup_error(exc):
    """True for TLS errors that do not heal (CA, certificate, host name, TLS spoken to plain HTTP).

    A TLS connection cut mid-way (``SSLEOFError``: a node killed during a request) is a connection error
    like any other and is retried; telling the two apart needs the text, because requests and urllib3 wrap
    the ``ssl`` exception twice.
    """
    if not (HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError)):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _TLS_SETUP)


def is_no_leader(exc):
    """True when the server says the cluster has no active node right now."""
    return bool(_NO_LEADER.search(_server_errors(exc)))


def describe(exc, url=None, what=None):
    """Return ``(message, hint)`` for any exception a Vault call can raise."""
    where = " at %s" % url if url else ""
    doing = "%s failed%s" % (what, where) if what else "Vault request failed%s" % where

    if isinstance(exc, HeraclesError):
        return exc.message, exc.hint

    if is_tls_setup_error(exc):
        text = str(exc)
        if "hostname" in text.lower() or "doesn't match" in text or "not valid for" in text:
            return ("%s: TLS hostname mismatch (%s)" % (doing, _short(text)),
                    "Address the node by a name in its certificate SANs, or regenerate the certificate with this name")
        return ("%s: TLS verification failed (%s)" % (doing, _short(text)),
                "Set ca_cert (or VAULT_CACERT) to the CA that signed the server certificate; "
                "for the local cluster that is .local/cluster/tls/ca.pem")
    if HAS_REQUESTS and isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return ("%s: cannot connect (%s)" % (doing, _short(str(exc))),
                "Check that the server is running and that url/nodes point at its API address "
                "(local cluster: make up)")

    if HAS_HVAC:
        server = _server_errors(exc)
        if isinstance(exc, hvac_exc.VaultNotInitialized):
            return "%s: Vault is not initialised" % doing, NOT_INIT_HINT
        if isinstance(exc, hvac_exc.VaultDown):
            return "%s: Vault is sealed or unavailable (%s)" % (doing, server), SEALED_HINT
        if isinstance(exc, hvac_exc.Forbidden):
            return "%s: permission denied (%s)" % (doing, server), TOKEN_HINT
        if isinstance(exc, hvac_exc.Unauthorized):
            return "%s: not authenticated (%s)" % (doing, server), TOKEN_HINT
        if isinstance(exc, hvac_exc.InvalidRequest):
            return "%s: the server rejected the request (%s)" % (doing, server), \
                "Fix the task's input; Vault was left unchanged"
        if isinstance(exc, hvac_exc.InvalidPath):
            return "%s: path not found (%s)" % (doing, server), \
                "Check the mount and path; is the secrets engine or auth method enabled?"
        if isinstance(exc, hvac_exc.RateLimitExceeded):
            return "%s: rate limited (%s)" % (doing, server), "Lower the concurrency or raise the server's rate-limit quota"
        if isinstance(exc, (hvac_exc.InternalServerError, hvac_exc.BadGateway)):
            if is_no_leader(exc):
                return "%s: quorum lost, no active node (%s)" % (doing, server), QUORUM_HINT
            return "%s: server error (%s)" % (doing, server), "Read the server log of the node named above"
        if isinstance(exc, hvac_exc.VaultError):
            return "%s: %s" % (doing, server), None

    return "%s: %s: %s" % (doing, exc.__class__.__name__, _short(str(exc))), None


def _short(text, limit=300):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
