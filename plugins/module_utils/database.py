# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database secrets engine: one function per endpoint, the admin credential's sources, its fingerprint.

Vault never returns a connection's password, and after ``rotate-root`` nobody but Vault knows it. What the modules
can compare is *which initial admin password was handed over last*: its fingerprint is kept in the connection's own
configuration (``connection_details.heracles_admin_fingerprint``, returned by ``GET <mount>/config/<name>`` like any
other detail). The fingerprint is PBKDF2-SHA256 (salted, 100,000 rounds, cut to 24 hex digits) of a password that
``rotate-root`` invalidated right after use, so it can neither be turned back nor log in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import hmac
import json
import os
import re
import time

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault, api
from ansible_collections.heracles.secrets.plugins.module_utils.errors import ConfigError

try:
    import boto3
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover
    HAS_BOTO3 = False

FINGERPRINT_KEY = "heracles_admin_fingerprint"
ROTATED_AT_KEY = "heracles_root_rotated_at"
FINGERPRINT_ROUNDS = 100000
DEFAULT_PLUGIN = "postgresql-database-plugin"
# Mount tune answers 0 for "the system default" (Vault's and OpenBao's is 768h).
SYSTEM_MAX_TTL = 768 * 3600

ADMIN_SOURCE_SPEC = dict(
    store=dict(type="str", required=True, choices=["file", "aws_secretsmanager"]),
    file=dict(type="path"),
    password_file=dict(type="path", no_log=False),
    secret_name=dict(type="str", no_log=False),
    key=dict(type="str", default="password", no_log=False),
    region=dict(type="str"),
    endpoint_url=dict(type="str"),
)

_UNREACHABLE = re.compile(r"dial error|connection refused|no such host|i/o timeout|timeout|network is unreachable|"
                          r"no route to host|connect: ", re.I)
_BAD_LOGIN = re.compile(r"password authentication failed|SASL auth|authentication failed|role \".*\" does not exist|"
                        r"28P01|28000", re.I)


# -- the admin credential -------------------------------------------------------------------------------------------
def _pick(text, key, where):
    """A secret's text: JSON/YAML-free plain text, or a JSON object holding ``key``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError("%s is not valid JSON" % where, "Store {\"%s\": \"...\"} or the bare password" % key)
        if not isinstance(data, dict) or not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError("%s holds no %r field" % (where, key),
                              "Store {\"%s\": \"...\"}, or set the admin source's key to the field's name" % key)
        return data[key]
    if "\n" not in text and ":" in text and text.split(":", 1)[0].strip() == key:  # a one-line YAML mapping
        return text.split(":", 1)[1].strip().strip("'\"")
    if not text:
        raise ConfigError("%s is empty" % where, "Put the initial admin password in it")
    return text


def read_admin_password(source):
    """The initial admin password from an ansible-vault file or a Secrets Manager secret (``ADMIN_SOURCE_SPEC``)."""
    key = source.get("key") or "password"
    if source.get("store") == "file":
        path, password_file = source.get("file"), source.get("password_file")
        if not path or not password_file:
            raise ConfigError("admin_source store=file needs file and password_file",
                              "Point file at the ansible-vault file with the admin password and password_file at its "
                              "vault password")
        try:
            with open(password_file, "rb") as handle:
                vault_password = handle.read().strip()
            with open(path, "rb") as handle:
                blob = handle.read()
        except (IOError, OSError) as exc:
            raise ConfigError("Cannot read the admin credential source %s: %s" % (exc.filename, exc.strerror),
                              "Check admin_source.file and admin_source.password_file")
        if not ansible_vault.is_encrypted(blob):
            raise ConfigError("%s is not an ansible-vault encrypted file" % path,
                              "Encrypt it (ansible-vault encrypt %s): a database admin password is never kept in clear"
                              % path)
        try:
            text = ansible_vault.decrypt(blob, vault_password).decode("utf-8")
        except ansible_vault.VaultFormatError as exc:
            raise ConfigError("Cannot decrypt %s: %s" % (path, exc), "Use the ansible-vault password it was written with")
        return _pick(text, key, path)
    if not HAS_BOTO3:
        raise ConfigError("admin_source store=aws_secretsmanager needs boto3", "pip install boto3")
    name = source.get("secret_name")
    if not name:
        raise ConfigError("admin_source store=aws_secretsmanager needs secret_name",
                          "Name the Secrets Manager secret (vault/environments/<env>.yml database.connections[].admin_secret)")
    try:
        client = boto3.client("secretsmanager", region_name=source.get("region"), endpoint_url=source.get("endpoint_url"))
        text = client.get_secret_value(SecretId=name)["SecretString"]
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise ConfigError("Cannot read secret %s: %s: %s" % (name, err.get("Code"), err.get("Message")),
                          "Check the name, region, secretsmanager:GetSecretValue and kms:Decrypt on its key")
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError("Cannot reach AWS Secrets Manager: %s" % exc, "Check region, endpoint and network")
    return _pick(text, key, "secretsmanager:%s" % name)


def source_label(source):
    """Where the admin credential comes from, for messages (no value)."""
    if source.get("store") == "file":
        return "ansible-vault file %s" % source.get("file")
    return "Secrets Manager secret %s" % source.get("secret_name")


def admin_fingerprint(password, salt=None):
    """``pbkdf2-sha256:<16 hex salt>:<24 hex>`` of ``password``: a marker that cannot be turned back."""
    salt = salt if salt is not None else binascii.hexlify(os.urandom(8)).decode("ascii")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"), FINGERPRINT_ROUNDS)
    return "pbkdf2-sha256:%s:%s" % (salt, binascii.hexlify(digest).decode("ascii")[:24])


def fingerprint_matches(marker, password):
    """True when ``marker`` (from the connection) is the fingerprint of ``password``."""
    parts = (marker or "").split(":")
    if len(parts) != 3 or parts[0] != "pbkdf2-sha256" or not re.match(r"^[0-9a-f]{16}$", parts[1]):
        return False
    return hmac.compare_digest(admin_fingerprint(password, parts[1]), marker)


def explain_connection_error(text, host_hint, source):
    """A hint for a connection write that Vault's verification refused."""
    if _BAD_LOGIN.search(text):
        return ("The admin credential from %s does not log in to %s: put the admin user's current password there "
                "(after rotate-root only Vault knows it: set a new one in the database first, then in the source); "
                "nothing was changed" % (source, host_hint))
    if _UNREACHABLE.search(text):
        return ("Vault's servers cannot reach %s: check host, port and TLS settings, DNS, and the network path from "
                "Vault to the database (NetworkPolicy, security groups); nothing was changed" % host_hint)
    return "Fix the connection's settings; nothing was changed"


def explain_statement_error(text):
    """PostgreSQL's words from a creds call that ran a role's statements."""
    match = re.search(r"(ERROR: .*?\(SQLSTATE \w+\))", text)
    return match.group(1) if match else text.strip().splitlines()[-1] if text.strip() else text


def server_text(exc):
    """The server's error strings of an hvac exception, on one line (never a request body)."""
    errors = getattr(exc, "errors", None) or [str(exc)]
    text = "; ".join(str(e) for e in errors) if isinstance(errors, (list, tuple)) else str(errors)
    return " ".join(text.split())


# -- Vault calls that combine endpoints (the endpoints themselves are in api.py) ----------------------------------
def read_mount(client, mount):
    """The engine at ``mount`` (type and lease TTLs, from the mount table and its tune), or None when absent."""
    entry = api.list_mounted_secrets_engines(client).get(mount.strip("/") + "/")
    if entry is None:
        return None
    tune = api.read_mount_configuration(client, mount)
    return dict(type=entry.get("type"), default_lease_ttl=int(tune.get("default_lease_ttl") or 0),
                max_lease_ttl=int(tune.get("max_lease_ttl") or 0))


def record_rotation(client, mount, name, when=None):
    """Stamp the connection with the time of its last root rotation (``connection_details``)."""
    api.configure_database_connection(client, mount, name,
                                      {ROTATED_AT_KEY: str(int(when if when is not None else time.time()))})


# -- comparisons ----------------------------------------------------------------------------------------------------
CONNECTION_FIELDS = ("plugin_name", "connection_url", "username", "allowed_roles", "max_open_connections")
ROLE_FIELDS = ("db_name", "creation_statements", "revocation_statements", "renew_statements", "rollback_statements",
               "default_ttl", "max_ttl")


def connection_view(data):
    """The compared fields of a stored connection (``GET config``)."""
    data = data or {}
    details = data.get("connection_details") or {}
    view = dict(plugin_name=data.get("plugin_name") or "", connection_url=details.get("connection_url") or "",
                username=details.get("username") or "", allowed_roles=sorted(data.get("allowed_roles") or []))
    if details.get("max_open_connections") not in (None, ""):
        view["max_open_connections"] = int(details["max_open_connections"])
    return view


def role_view(data):
    """The compared fields of a stored role (``GET roles/<name>``)."""
    data = data or {}
    view = dict(db_name=data.get("db_name") or "", default_ttl=int(data.get("default_ttl") or 0),
                max_ttl=int(data.get("max_ttl") or 0))
    for key in ("creation_statements", "revocation_statements", "renew_statements", "rollback_statements"):
        view[key] = [s for s in (data.get(key) or []) if s]
    return view
