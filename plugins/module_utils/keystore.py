# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where init material (unseal/recovery keys, root token) lives: always encrypted.

Two destinations:

* ``file`` -- an ansible-vault 1.1 file, mode 0600, written atomically;
* ``aws_secretsmanager`` -- a Secrets Manager secret encrypted under a KMS key.

The payload is a JSON document; it never leaves this module in clear except
to the encryption call.  Both stores refuse to overwrite existing material
unless told to: a second ``vault_init`` against a new cluster must not destroy
the only copy of another cluster's keys.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import shutil
import stat
import tempfile

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault
from ansible_collections.heracles.secrets.plugins.module_utils.aws_import import HAS_BOTO3, boto3, botocore_exceptions
from ansible_collections.heracles.secrets.plugins.module_utils.errors import KeystoreError


PAYLOAD_VERSION = 1

# Snapshot signing keys (HMAC-SHA256) live in the same encrypted document as the unseal keys: whoever can read or
# change a backup bucket cannot sign. Oldest first; the last one signs new snapshots, all of them verify.
SIGNING_KEYS = "snapshot_signing_keys"
SIGNING_KEY_BYTES = 32

KEYSTORE_SPEC = dict(
    init_store=dict(type="str", default="file", choices=["file", "aws_secretsmanager"]),
    init_file=dict(type="path", no_log=False),
    init_file_password=dict(type="str", no_log=True),
    init_file_password_file=dict(type="path", no_log=False),
    aws_secret_name=dict(type="str", no_log=False),
    aws_kms_key_id=dict(type="str", no_log=False),
    aws_region=dict(type="str"),
    aws_endpoint_url=dict(type="str"),
)


def read_password(params):
    if params.get("init_file_password"):
        return params["init_file_password"]
    path = params.get("init_file_password_file") or os.environ.get("HERACLES_INIT_FILE_PASSWORD_FILE")
    if not path:
        raise KeystoreError("No password for the encrypted init file",
                            "Set init_file_password_file (a file readable only by you) or init_file_password")
    try:
        with open(path, "rb") as handle:
            password = handle.read().strip()
    except (IOError, OSError) as exc:
        raise KeystoreError("Cannot read init_file_password_file %s: %s" % (path, exc.strerror),
                            "Create it (local default: make up does) or point the option at the right file")
    if not password:
        raise KeystoreError("init_file_password_file %s is empty" % path, "Put the ansible-vault password in it")
    return password


class FileStore:
    kind = "file"

    def __init__(self, path, password):
        if not path:
            raise KeystoreError("init_file is required with init_store=file",
                                "Set init_file to where the encrypted keys live (local default: .local/cluster/init.vault)")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.password = password

    @property
    def location(self):
        return self.path

    def exists(self):
        return os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def copy_beside(self, when, suffix):
        """A 0600, fsynced copy of the encrypted file at ``<path>.<UTC time><suffix>`` (``-N`` added when taken)."""
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        for attempt in range(100):
            path = "%s.%s%s%s" % (self.path, stamp, "" if attempt == 0 else "-%d" % attempt, suffix)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as handle, open(self.path, "rb") as source:
                shutil.copyfileobj(source, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(path, 0o600)  # O_CREAT's mode is filtered by the umask
            return path
        raise KeystoreError("Cannot find a free backup name beside %s" % self.path, "Move old %s files away" % suffix)

    def permission_warnings(self):
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            return []
        if mode & 0o077:
            return ["%s has mode %04o; it should be 0600" % (self.path, mode)]
        return []

    def check_writable(self):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise KeystoreError("The directory of init_file does not exist: %s" % directory,
                                "Create it (mode 0700) before initialising; nothing was changed")
        if not os.access(directory, os.W_OK):
            raise KeystoreError("Cannot write init_file in %s" % directory,
                                "Run as a user that can write there; nothing was changed")

    def read(self):
        if not self.exists():
            raise KeystoreError("The encrypted init file %s does not exist" % self.path,
                                "Point init_file at the file vault_init wrote (local default: .local/cluster/init.vault); "
                                "without it the cluster cannot be unsealed by this collection")
        with open(self.path, "rb") as handle:
            data = handle.read()
        try:
            plain = ansible_vault.decrypt(data, self.password)
        except ansible_vault.VaultFormatError as exc:
            raise KeystoreError("Cannot decrypt %s: %s" % (self.path, exc),
                                "Use the ansible-vault password this file was written with")
        return _load(plain, self.path)

    def write(self, payload, overwrite=False):
        if self.exists() and not overwrite:
            refuse_overwrite(self.location)
        self.check_writable()
        blob = ansible_vault.encrypt(json.dumps(payload, sort_keys=True), self.password)
        directory = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".init-", dir=directory)  # mkstemp creates 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.path)
        except Exception:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class AwsSecretsManagerStore:
    kind = "aws_secretsmanager"

    def __init__(self, name, kms_key_id=None, region=None, endpoint_url=None):
        if not HAS_BOTO3:
            raise KeystoreError("init_store=aws_secretsmanager needs boto3 on the host that runs the module",
                                "pip install boto3 (it is in requirements.txt)")
        if not name:
            raise KeystoreError("aws_secret_name is required with init_store=aws_secretsmanager",
                                "Name the Secrets Manager secret, for example heracles/prod/vault-init")
        self.name = name
        self.kms_key_id = kms_key_id
        self.client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)

    @property
    def location(self):
        return "secretsmanager:%s" % self.name

    def permission_warnings(self):
        return []

    def _describe(self):
        try:
            return self.client.describe_secret(SecretId=self.name)
        except botocore_exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise KeystoreError("Cannot describe secret %s: %s" % (self.name, _aws_error(exc)),
                                "Check AWS credentials, region and secretsmanager:DescribeSecret permission")
        except botocore_exceptions.BotoCoreError as exc:
            raise KeystoreError("Cannot reach AWS Secrets Manager: %s" % exc,
                                "Check region, endpoint and network; nothing was changed")

    def exists(self):
        meta = self._describe()
        return bool(meta and meta.get("VersionIdsToStages"))

    def check_writable(self):
        self._describe()  # raises on bad credentials or endpoint before we init

    def read(self):
        try:
            resp = self.client.get_secret_value(SecretId=self.name)
        except botocore_exceptions.ClientError as exc:
            raise KeystoreError("Cannot read secret %s: %s" % (self.name, _aws_error(exc)),
                                "Check the name, region, secretsmanager:GetSecretValue and kms:Decrypt on its key")
        except botocore_exceptions.BotoCoreError as exc:
            raise KeystoreError("Cannot reach AWS Secrets Manager: %s" % exc,
                                "Check region, endpoint and network; nothing was changed")
        return _load(resp["SecretString"], self.location)

    def write(self, payload, overwrite=False):
        text = json.dumps(payload, sort_keys=True)
        meta = self._describe()
        try:
            if meta is None:
                kwargs = dict(Name=self.name, SecretString=text,
                              Description="OpenBao/Vault init material (heracles.secrets)")
                if self.kms_key_id:
                    kwargs["KmsKeyId"] = self.kms_key_id
                self.client.create_secret(**kwargs)
            elif meta.get("VersionIdsToStages") and not overwrite:
                refuse_overwrite(self.location)
            else:
                self.client.put_secret_value(SecretId=self.name, SecretString=text)
        except botocore_exceptions.ClientError as exc:
            raise KeystoreError("Cannot write secret %s: %s" % (self.name, _aws_error(exc)),
                                "Check secretsmanager:CreateSecret/PutSecretValue and kms:GenerateDataKey on the key")


def refuse_overwrite(location):
    raise KeystoreError("%s already holds init material" % location,
                        "It may hold another cluster's keys: move it away or use another name, "
                        "or set overwrite_init_file=true; nothing was changed")


def _aws_error(exc):
    err = exc.response.get("Error", {})
    return "%s: %s" % (err.get("Code"), err.get("Message"))


def _load(plain, where):
    try:
        payload = json.loads(plain)
    except ValueError:
        raise KeystoreError("%s decrypted but is not init material (not JSON)" % where,
                            "Point init_file at a file written by heracles.secrets.vault_init")
    if not isinstance(payload, dict) or "version" not in payload:
        raise KeystoreError("%s decrypted but is not init material" % where,
                            "Point init_file at a file written by heracles.secrets.vault_init")
    return payload


def open_store(params):
    """Return the store described by the KEYSTORE_SPEC options in ``params``."""
    if params.get("init_store", "file") == "aws_secretsmanager":
        return AwsSecretsManagerStore(params.get("aws_secret_name"), params.get("aws_kms_key_id"),
                                      params.get("aws_region"), params.get("aws_endpoint_url"))
    return FileStore(params.get("init_file"), read_password(params))


def unseal_keys(payload):
    """The keys that unseal (Shamir) or authorise operations (recovery)."""
    return payload.get("unseal_keys_b64") or payload.get("recovery_keys_b64") or []


def signing_key_id(secret):
    """A public name for a signing key: a hash of it under its own label (it reveals nothing of the key)."""
    return "hmac-" + hashlib.sha256(b"heracles.secrets snapshot signing key id\0" + secret).hexdigest()[:16]


def signing_keys(payload):
    """The snapshot signing keys held in ``payload``, oldest first (the last one signs)."""
    out = []
    for entry in (payload or {}).get(SIGNING_KEYS) or []:
        if isinstance(entry, dict) and entry.get("id") and entry.get("key_b64"):
            out.append(entry)
    return out


def add_signing_key(payload, created_at):
    """A copy of ``payload`` with a new random HMAC key appended, and that key's id.

    Older keys stay, so the snapshots they signed stay verifiable. The new key is random bytes from the OS,
    never derived from anything else in the payload.
    """
    secret = os.urandom(SIGNING_KEY_BYTES)
    entry = dict(id=signing_key_id(secret), alg="hmac-sha256", created_at=created_at,
                 key_b64=base64.b64encode(secret).decode("ascii"))
    out = dict(payload)
    out[SIGNING_KEYS] = signing_keys(payload) + [entry]
    return out, entry["id"]


def merge_signing_keys(primary, other):
    """``primary``'s signing keys with ``other``'s appended in front (older), without duplicates.

    Used when one cluster's init material replaces another's (a forced restore): the replaced material's keys still
    verify the snapshots they signed, and ``primary``'s current key keeps signing.
    """
    mine = signing_keys(primary)
    ids = set(entry["id"] for entry in mine)
    out = dict(primary)
    out[SIGNING_KEYS] = [entry for entry in signing_keys(other) if entry["id"] not in ids] + mine
    return out
