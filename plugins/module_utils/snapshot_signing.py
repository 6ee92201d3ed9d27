# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed snapshots: who wrote this file, and was it changed since?

A raft snapshot's ``SHA256SUMS`` and our ``.sha256`` sidecar only catch accidents: whoever can write the file can
recompute both. A snapshot is therefore signed when it is saved, with a key that whoever holds the backup bucket
does not hold:

* ``hmac-sha256`` -- a random 256-bit key kept inside the encrypted init material (``keystore.SIGNING_KEYS``: the
  ansible-vault file or the Secrets Manager secret), created on the first signed save;
* ``kms-hmac-sha256`` -- an AWS KMS HMAC key through ``GenerateMac``/``VerifyMac``; the key never leaves KMS, and
  the backup job needs ``kms:GenerateMac`` on it instead of read access to the init material.

The signature is a small JSON document (``<file>.sig`` beside the file, base64 in the S3 object's metadata) whose
MAC covers the file's sha256 and size, the raft index/term, the id of the cluster it was taken from, and when.
Nothing secret is in it: the key is named by ``key_id``, a hash of the key under its own label.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os

from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils.aws_import import HAS_BOTO3, boto3, botocore_exceptions

FORMAT = "heracles-snapshot-signature/1"
# The fields the MAC covers, in this order (the canonical form sorts them anyway).
SIGNED_FIELDS = ("format", "alg", "key_id", "sha256", "size", "index", "term", "snapshot_id", "cluster_id", "signed_at")

VALID, MISSING, INVALID, UNKNOWN_KEY, MALFORMED = "valid", "missing", "invalid", "unknown_key", "malformed"


class SigningError(snap.SnapshotError):
    """No key to sign with, or a KMS call failed."""


def canonical(doc):
    """The bytes the MAC is computed over: the signed fields as compact, sorted JSON."""
    return json.dumps(dict((name, doc.get(name)) for name in SIGNED_FIELDS), sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class HmacKey(object):
    """A key from the init material. ``source`` says which material held it (for messages, never the key)."""

    alg = "hmac-sha256"

    def __init__(self, entry, source):
        try:
            self._secret = base64.b64decode(entry["key_b64"])
        except (binascii.Error, TypeError, ValueError):
            raise SigningError("the snapshot signing key %s in %s is not base64" % (entry.get("id"), source),
                               "Restore the init material from its backup; do not edit it by hand")
        self.key_id = keystore.signing_key_id(self._secret)
        self.source = source

    def mac(self, message):
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def check(self, message, mac):
        return hmac.compare_digest(self.mac(message), str(mac or ""))


class KmsMacKey(object):
    """An AWS KMS HMAC key (key spec HMAC_256): ``GenerateMac`` signs, ``VerifyMac`` checks."""

    alg = "kms-hmac-sha256"
    ALGORITHM = "HMAC_SHA_256"

    def __init__(self, key_id, region=None, endpoint_url=None):
        if not HAS_BOTO3:
            raise SigningError("signing_kms_key_id needs boto3 on the host that runs the module", "pip install boto3")
        self.client = boto3.client("kms", region_name=region, endpoint_url=endpoint_url)
        try:
            meta = self.client.describe_key(KeyId=key_id)["KeyMetadata"]
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            raise _kms_error(exc, "Describing the signing key %s" % key_id)
        if meta.get("KeyUsage") != "GENERATE_VERIFY_MAC":
            raise SigningError("KMS key %s is not an HMAC key (usage %s)" % (key_id, meta.get("KeyUsage")),
                               "Create one with KeySpec HMAC_256 and KeyUsage GENERATE_VERIFY_MAC")
        # The ARN, not what the operator typed (an alias can be moved): a signature names the key that made it.
        self.key_id = meta["Arn"]
        self.source = "KMS key %s" % meta["Arn"]

    def mac(self, message):
        try:
            resp = self.client.generate_mac(KeyId=self.key_id, Message=message, MacAlgorithm=self.ALGORITHM)
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            raise _kms_error(exc, "Signing with %s (kms:GenerateMac)" % self.key_id)
        return base64.b64encode(resp["Mac"]).decode("ascii")

    def check(self, message, mac):
        try:
            raw = base64.b64decode(str(mac or ""))
            resp = self.client.verify_mac(KeyId=self.key_id, Message=message, MacAlgorithm=self.ALGORITHM, Mac=raw)
        except (binascii.Error, TypeError, ValueError):
            return False
        except botocore_exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "KMSInvalidMacException":
                return False
            raise _kms_error(exc, "Verifying with %s (kms:VerifyMac)" % self.key_id)
        except botocore_exceptions.BotoCoreError as exc:
            raise _kms_error(exc, "Verifying with %s (kms:VerifyMac)" % self.key_id)
        return bool(resp.get("MacValid"))


def _kms_error(exc, what):
    if HAS_BOTO3 and isinstance(exc, botocore_exceptions.ClientError):
        err = exc.response.get("Error", {})
        text = "%s: %s" % (err.get("Code"), err.get("Message"))
    else:
        text = str(exc)
    return SigningError("%s failed: %s" % (what, text),
                        "Check the key id, region and the role's kms:GenerateMac/kms:VerifyMac permissions; "
                        "nothing was changed")


class Verdict(object):
    """What a signature says about a file: ``status`` is one of VALID, MISSING, INVALID, UNKNOWN_KEY, MALFORMED."""

    def __init__(self, status, path, doc=None, key=None, reason=None):
        self.status = status
        self.path = path
        self.doc = doc or {}
        self.key = key
        self.reason = reason

    @property
    def valid(self):
        return self.status == VALID

    @property
    def cluster_id(self):
        return self.doc.get("cluster_id") if self.valid else None

    def result(self):
        """The facts a module returns (nothing secret)."""
        out = dict(status=self.status, key_id=self.doc.get("key_id"), alg=self.doc.get("alg"))
        if self.valid:
            out.update(cluster_id=self.doc.get("cluster_id"), signed_at=self.doc.get("signed_at"),
                       verified_with=self.key.source)
        if self.reason:
            out["reason"] = self.reason
        return out

    def error(self, restoring=False):
        """``(message, hint)`` for a snapshot that must be refused because of its signature."""
        sig = snap.signature_path(self.path)
        never = "force=true does not override this"
        if self.status == MISSING:
            return ("snapshot %s has no signature (%s)" % (self.path, sig),
                    "Nothing tells an unsigned snapshot from an altered one, or this cluster's from another "
                    "cluster's: %s. Restore a signed backup; only if you know where this file comes from and "
                    "that nobody changed it, set allow_unsigned=true" % never)
        if self.status == UNKNOWN_KEY:
            return ("snapshot %s is signed with key %s, which neither this cluster's init material nor restore_init_file "
                    "holds%s" % (self.path, self.doc.get("key_id"), " (%s)" % self.reason if self.reason else ""),
                    "If it was taken on another cluster, set restore_init_file to that cluster's init material: its key "
                    "verifies the signature (to replace this cluster's data with it, also set force=true and "
                    "restore_init_file). If you cannot name the cluster it came from, treat it as forged and do not "
                    "restore it; %s" % never)
        if self.status == INVALID:
            return ("the signature of snapshot %s does not match the file (%s)" % (self.path, self.reason),
                    "The file or its signature was changed after it was saved: do not restore it, use another backup "
                    "(%s)" % never)
        return ("the signature file %s of snapshot %s cannot be read (%s)" % (sig, self.path, self.reason),
                "Do not restore it; use another backup (%s)" % never)


class Keyring(object):
    """The keys that verify (all of them) and the one that signs (``signer``)."""

    def __init__(self):
        self.keys = {}
        self.signer = None
        self.notes = []  # why a source of keys could not be read (said when a signature cannot be checked)

    def add(self, key, signing=False):
        self.keys.setdefault(key.key_id, key)
        if signing:
            self.signer = key
        return key

    def add_material(self, payload, source, signing=False):
        """Every signing key of one init material; its newest signs when ``signing``."""
        entries = keystore.signing_keys(payload)
        for position, entry in enumerate(entries):
            self.add(HmacKey(entry, source), signing=signing and position == len(entries) - 1)
        return len(entries)

    def sign(self, facts, cluster_id=None, signed_at=None):
        """The signature document (text) for a snapshot's ``facts`` (path, sha256, size, index, term, snapshot_id)."""
        if self.signer is None:
            raise SigningError("no key to sign the snapshot with", "Give the init material or signing_kms_key_id")
        doc = dict(format=FORMAT, alg=self.signer.alg, key_id=self.signer.key_id, sha256=facts["sha256"],
                   size=facts["size"], index=facts.get("index"), term=facts.get("term"),
                   snapshot_id=facts.get("snapshot_id"), cluster_id=cluster_id, signed_at=signed_at or utc_now())
        doc["mac"] = self.signer.mac(canonical(doc))
        return json.dumps(doc, sort_keys=True, indent=2) + "\n"

    def verify_text(self, path, text, facts):
        """Check a signature document (text) against the file's ``facts``; return a Verdict."""
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not a %s document" % FORMAT)
        except ValueError as exc:
            return Verdict(MALFORMED, path, reason=str(exc))
        key = self.keys.get(doc.get("key_id"))
        if key is None or key.alg != doc.get("alg"):
            return Verdict(UNKNOWN_KEY, path, doc, reason="; ".join(self.notes) or None)
        if not key.check(canonical(doc), doc.get("mac")):
            return Verdict(INVALID, path, doc, key, reason="its MAC is wrong: the signature was edited or forged")
        if doc.get("sha256") != facts["sha256"] or doc.get("size") != facts["size"]:
            return Verdict(INVALID, path, doc, key,
                           reason="signed for sha256 %s... (%s bytes), the file has %s... (%s bytes)"
                           % (str(doc.get("sha256"))[:16], doc.get("size"), facts["sha256"][:16], facts["size"]))
        return Verdict(VALID, path, doc, key)

    def verify(self, path, facts):
        """Check ``<path>.sig`` against the file's ``facts``; return a Verdict."""
        sig = snap.signature_path(path)
        if not os.path.exists(sig):
            return Verdict(MISSING, path)
        try:
            with open(sig) as handle:
                text = handle.read(64 * 1024)
        except (IOError, OSError, UnicodeDecodeError) as exc:
            return Verdict(MALFORMED, path, reason=str(exc))
        return self.verify_text(path, text, facts)


def encode_metadata(text):
    """A signature document as an S3 metadata value (ASCII): base64 of its compact JSON."""
    doc = json.loads(text)
    return base64.b64encode(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")).decode("ascii")


def decode_metadata(value):
    """The signature document (text) from an S3 metadata value; None when it is not one."""
    try:
        doc = json.loads(base64.b64decode(value).decode("utf-8"))
    except (binascii.Error, TypeError, ValueError):
        return None
    return json.dumps(doc, sort_keys=True, indent=2) + "\n"
