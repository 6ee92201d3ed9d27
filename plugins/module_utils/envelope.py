# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Envelope encryption of Kubernetes Secrets at rest: what a stored value says about how it was written, and the
decisions of the two modules (which Secrets to rewrite, whether the EKS re-encryption marker is current).

How kube-apiserver stores a Secret in etcd (``k8s.io/apiserver/pkg/storage/value``): the encoded object
(protobuf, starting ``k8s\\x00``) goes through the first provider of the EncryptionConfiguration, which prepends
its prefix:

* ``k8s:enc:kms:v2:<provider name>:`` + a protobuf ``EncryptedObject`` (KMS v2: field 1 the ciphertext, field 2
  the ``keyID`` the KMS plugin reported, field 3 the encrypted DEK source) -- the target here;
* ``k8s:enc:kms:v1:<name>:``, ``k8s:enc:aescbc:v1:<key name>:``, ``k8s:enc:aesgcm:v1:<key name>:``,
  ``k8s:enc:secretbox:v1:<key name>:`` -- encrypted, but not with KMS v2;
* no prefix at all (``identity``): the plain object, ``k8s\\x00`` (protobuf) or ``{`` (JSON storage).

Nothing here returns or formats a stored value: only the prefix up to the provider name (configuration, not
data), the KMS v2 key ID (a key identifier, not key material) and counts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError

ENC_PREFIX = b"k8s:enc:"
KMS_V2_PREFIX = b"k8s:enc:kms:v2:"
PROTOBUF_PREFIX = b"k8s\x00"
SECRETS_RESOURCE = "secrets"
_FIELD = re.compile(br"^[\x21-\x39\x3b-\x7e]{1,253}$")  # printable ASCII without ':' (a provider/key name)
_KEY_ID = re.compile(r"^[\x20-\x7e]{1,1024}$")
MAX_PREFIX_SCAN = 600  # bytes: k8s:enc: + type + version + a name of at most 253 bytes

# What the modules say for each kind of provider (the ``provider`` field of a classification).
PROVIDERS = {
    "kms-v2": "KMS v2",
    "kms-v1": "KMS v1 (deprecated)",
    "aescbc": "aescbc (local key)",
    "aesgcm": "aesgcm (local key)",
    "secretbox": "secretbox (local key)",
    "identity": "identity (NOT encrypted)",
    "unknown": "unknown format",
}

TARGET_SPEC = dict(
    kms_provider_name=dict(type="str"),
    kms_v2_key_id=dict(type="str", no_log=False),
)


class EnvelopeError(HeraclesError):
    """Bad input or a state the modules cannot work with; ``hint`` says what to do."""


# ---------------------------------------------------------------- reading a stored value's header
def _varint(data, pos):
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def kms_v2_key_id(payload):
    """The ``keyID`` (field 2) of a KMS v2 ``EncryptedObject`` protobuf, or None when it cannot be read.

    Only field headers and that one string are looked at; the ciphertext fields are skipped by length.
    """
    pos = 0
    try:
        while pos < len(payload):
            tag, pos = _varint(payload, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                dummy, pos = _varint(payload, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(payload, pos)
                if pos + length > len(payload):
                    return None
                if field == 2:
                    text = payload[pos:pos + length].decode("utf-8")
                    return text if _KEY_ID.match(text) else None
                pos += length
            else:
                return None
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def classify(value):
    """How ``value`` (the bytes etcd stores for one Secret) was written.

    Returns ``dict(provider, prefix, encrypted, name, key_id)``: ``provider`` a key of :data:`PROVIDERS`,
    ``prefix`` the value's first bytes up to and including the provider name (``k8s\\x00`` escaped) or a
    description when there is none, ``name`` the provider or key name, ``key_id`` the KMS v2 key ID.
    """
    out = dict(provider="unknown", prefix="(unrecognised)", encrypted=False, name=None, key_id=None)
    if value.startswith(ENC_PREFIX):
        head = value[:MAX_PREFIX_SCAN].split(b":", 5)
        # k8s, enc, <type>, <version>, <name>, <rest>
        if len(head) == 6 and all(_FIELD.match(part) for part in head[2:5]):
            kind, version, name = (part.decode("ascii") for part in head[2:5])
            out.update(prefix="k8s:enc:%s:%s:%s:" % (kind, version, name), name=name)
            if kind == "kms":
                out["provider"] = "kms-v2" if version == "v2" else "kms-v1"
            elif kind in ("aescbc", "aesgcm", "secretbox"):
                out["provider"] = kind
            elif kind == "identity":
                out["provider"] = "identity"
            out["encrypted"] = out["provider"] not in ("identity", "unknown")
            if out["provider"] == "kms-v2":
                out["key_id"] = kms_v2_key_id(value[len(out["prefix"]):])
        elif len(head) >= 3 and head[2] == b"identity":
            out.update(provider="identity", prefix="k8s:enc:identity")
        else:
            out.update(prefix="k8s:enc: (provider not readable)")
        return out
    if value.startswith(PROTOBUF_PREFIX):
        out.update(provider="identity", prefix="k8s\\x00 (plain protobuf)")
    elif value[:1] in (b"{", b"["):
        out.update(provider="identity", prefix="{ (plain JSON)")
    return out


class Target:
    """What "encrypted with the stack's key" means in etcd: KMS v2, optionally this provider name and key ID."""

    def __init__(self, provider_name=None, key_id=None):
        if provider_name is not None and (not provider_name or ":" in provider_name):
            raise EnvelopeError("kms_provider_name %r must be a non-empty name without ':'" % provider_name,
                                "Use the kms provider's name from the API server's EncryptionConfiguration "
                                "(pulumi/platform renders <clusterName>-kms)")
        self.provider_name = provider_name or None
        self.key_id = key_id or None

    @property
    def prefix(self):
        """The value prefix of the target (str), as far as it is fixed."""
        return "k8s:enc:kms:v2:%s:" % self.provider_name if self.provider_name else "k8s:enc:kms:v2:"

    def describe(self):
        out = "KMS v2"
        if self.provider_name:
            out += " provider %s" % self.provider_name
        if self.key_id:
            out += " key ID %s" % self.key_id
        return out

    def miss(self, found):
        """Why a classification is not on target, or None when it is."""
        if found["provider"] != "kms-v2":
            return "written by %s, not KMS v2" % PROVIDERS[found["provider"]]
        if self.provider_name and found["name"] != self.provider_name:
            return "KMS v2 provider %s, expected %s" % (found["name"], self.provider_name)
        if self.key_id and found["key_id"] != self.key_id:
            return "KMS v2 key ID %s, expected %s" % (found["key_id"] or "(unreadable)", self.key_id)
        return None


# ---------------------------------------------------------------- a scan of /registry/secrets/
def secrets_prefix(etcd_prefix):
    """``<etcd_prefix>/secrets/`` (kube-apiserver ``--etcd-prefix``, ``/registry`` by default)."""
    base = "/" + (etcd_prefix or "").strip("/")
    return (base.rstrip("/") + "/" + SECRETS_RESOURCE + "/").replace("//", "/")


def namespace_prefix(etcd_prefix, namespace):
    return secrets_prefix(etcd_prefix) + namespace + "/"


class SecretsScan:
    """Accumulates what :meth:`inspect` is shown, one Secret at a time, keeping no value."""

    LIST_LIMIT = 10  # names quoted in a message; the returned lists are complete

    def __init__(self, etcd_prefix, target):
        self.prefix = secrets_prefix(etcd_prefix)
        self.target = target
        self.total = 0
        self.on_target = 0
        self.by_provider = {}
        self.by_prefix = {}
        self.key_ids = {}
        self.namespaces = {}
        self.off_target = []
        self.other_keys = 0
        self.revision = None
        self.endpoint = None

    def inspect(self, key, value, mod_revision=None):
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            self.other_keys += 1
            return
        rest = text[len(self.prefix):] if text.startswith(self.prefix) else ""
        namespace, _sep, name = rest.partition("/")
        if not namespace or not name or "/" in name:
            self.other_keys += 1
            return
        found = classify(value)
        self.total += 1
        self.by_provider[found["provider"]] = self.by_provider.get(found["provider"], 0) + 1
        self.by_prefix[found["prefix"]] = self.by_prefix.get(found["prefix"], 0) + 1
        if found["provider"] == "kms-v2":
            key_id = found["key_id"] or "(unreadable)"
            self.key_ids[key_id] = self.key_ids.get(key_id, 0) + 1
        per_ns = self.namespaces.setdefault(namespace, dict(total=0, on_target=0))
        per_ns["total"] += 1
        reason = self.target.miss(found)
        if reason is None:
            self.on_target += 1
            per_ns["on_target"] += 1
            return
        self.off_target.append(dict(secret="%s/%s" % (namespace, name), namespace=namespace, name=name,
                                    provider=found["provider"], prefix=found["prefix"], reason=reason,
                                    mod_revision=mod_revision))

    def refs(self):
        return [item["secret"] for item in self.off_target]

    def result(self):
        return dict(endpoint=self.endpoint, revision=self.revision, prefix=self.prefix, target=self.target.describe(),
                    total=self.total, on_target=self.on_target, not_on_target=len(self.off_target),
                    by_provider=dict(self.by_provider), by_prefix=dict(self.by_prefix),
                    kms_v2_key_ids=dict(self.key_ids), namespaces=dict(self.namespaces),
                    secrets_not_on_target=[dict((k, v) for k, v in item.items() if k != "mod_revision")
                                           for item in self.off_target],
                    other_keys=self.other_keys)

    def summary_lines(self):
        lines = ["etcd %s (revision %s): %d Secrets under %s, %d on %s, %d not"
                 % (self.endpoint, self.revision, self.total, self.prefix, self.on_target, self.target.describe(),
                    len(self.off_target))]
        for prefix, count in sorted(self.by_prefix.items()):
            lines.append("  %-40s %d" % (prefix, count))
        for item in self.off_target[:self.LIST_LIMIT]:
            lines.append("  not on target: %s (%s)" % (item["secret"], item["reason"]))
        if len(self.off_target) > self.LIST_LIMIT:
            lines.append("  ... and %d more (secrets_not_on_target)" % (len(self.off_target) - self.LIST_LIMIT))
        return lines


def scan_secrets(gateway, etcd_prefix, target, namespaces=None, page_size=500):
    """Classify every Secret in etcd (or those of ``namespaces``): a :class:`SecretsScan`."""
    scan = SecretsScan(etcd_prefix, target)
    prefixes = [namespace_prefix(etcd_prefix, ns) for ns in namespaces] if namespaces else [scan.prefix]
    for prefix in prefixes:
        revision = gateway.scan(prefix.encode("utf-8"), scan.inspect, page_size=page_size)
        scan.revision = revision if scan.revision is None else max(scan.revision, revision)
    scan.endpoint = gateway.endpoint
    return scan


def quote_refs(refs, limit=SecretsScan.LIST_LIMIT):
    shown = ", ".join(refs[:limit])
    return shown + (" and %d more" % (len(refs) - limit) if len(refs) > limit else "")


def check_namespaces(namespaces):
    """Namespace names as Kubernetes allows them (DNS-1123 labels); raises :class:`EnvelopeError`."""
    for ns in namespaces or []:
        if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns or ""):
            raise EnvelopeError("namespace %r is not a Kubernetes namespace name" % (ns,),
                                "Give namespaces as plain names (payments, kube-system); nothing was read or written")
    return list(namespaces or [])


# ---------------------------------------------------------------- the EKS re-encryption marker
MARKER_KEYS = ("cluster", "keyArn", "reencryptedAt", "secrets")


def marker_decision(marker, key_arn, force):
    """``(rewrite_all, reason)`` for an EKS cluster whose Secrets are encrypted with ``key_arn``.

    EKS never changes or removes a cluster's Secrets key once it is associated (AssociateEncryptionConfig is
    irreversible, and the key cannot be swapped), so "the encryption configuration is newer than the last
    re-encryption" is exactly "the marker does not record this key ARN".
    """
    if force:
        return True, "force=true"
    if not marker:
        return True, "no re-encryption marker: Secrets written before encryption was enabled may be unencrypted"
    recorded = marker.get("keyArn")
    if recorded != key_arn:
        return True, "the marker records key %s, the cluster encrypts with %s" % (recorded or "(none)", key_arn)
    return False, "re-encrypted under %s at %s (marker); nothing to do" % (key_arn, marker.get("reencryptedAt") or "?")
