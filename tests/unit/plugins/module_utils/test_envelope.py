"""envelope.py (reading stored values, targets, scans, the EKS marker), etcd_v3.py helpers, secrets_kube.py's
scrubbing and retries, and the contracts around them: the doc fragment equals the argument specs, the role's
defaults equal its argument_specs.yml.

The stored values are built here byte by byte from the formats kube-apiserver writes
(k8s.io/apiserver/pkg/storage/value/encrypt/...): ``k8s:enc:<provider>:<version>:<name>:`` + ciphertext, and for
KMS v2 a protobuf ``EncryptedObject`` {1 encryptedData, 2 keyID, 3 encryptedDEKSource}.
"""

import os

import pytest
import yaml

from ansible_collections.heracles.secrets.plugins.doc_fragments import kubernetes as kube_fragment
from ansible_collections.heracles.secrets.plugins.doc_fragments.envelope_encryption import ModuleDocFragment
from ansible_collections.heracles.secrets.plugins.module_utils import envelope, etcd_v3, secrets_kube
from ansible_collections.heracles.secrets.plugins.module_utils.envelope_aws import AWS_SPEC, cluster_key_arn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLE = os.path.join(REPO_ROOT, "roles", "envelope_encryption")


def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, data, wire=2):
    if wire == 0:
        return varint(number << 3) + varint(data)
    return varint(number << 3 | 2) + varint(len(data)) + data


KEY_ID = "arn:aws:kms:ap-northeast-1:333333333333:key/1f0e2d3c-0000-4000-8000-000000000001"
CIPHER = os.urandom(300)  # long enough that its length needs a two-byte varint
KMS_V2 = b"k8s:enc:kms:v2:heracles-prod-kms:" + field(1, CIPHER) + field(2, KEY_ID.encode()) + field(3, os.urandom(40))


CLASSIFY_CASES = [
    (KMS_V2, "kms-v2", "k8s:enc:kms:v2:heracles-prod-kms:", "heracles-prod-kms", KEY_ID, True),
    # keyID after other fields, an annotation (field 4) and the DEK source type (field 5, varint) first
    (b"k8s:enc:kms:v2:p:" + field(5, 1, wire=0) + field(4, b"\n\x01a\x12\x01b") + field(1, b"x") + field(2, b"k-2"),
     "kms-v2", "k8s:enc:kms:v2:p:", "p", "k-2", True),
    (b"k8s:enc:kms:v2:p:" + b"\x0a\xff\xff", "kms-v2", "k8s:enc:kms:v2:p:", "p", None, True),  # truncated
    (b"k8s:enc:kms:v1:legacy:" + os.urandom(32), "kms-v1", "k8s:enc:kms:v1:legacy:", "legacy", None, True),
    (b"k8s:enc:aescbc:v1:key1:" + os.urandom(48), "aescbc", "k8s:enc:aescbc:v1:key1:", "key1", None, True),
    (b"k8s:enc:aesgcm:v1:key2:" + os.urandom(48), "aesgcm", "k8s:enc:aesgcm:v1:key2:", "key2", None, True),
    (b"k8s:enc:secretbox:v1:sb:" + os.urandom(48), "secretbox", "k8s:enc:secretbox:v1:sb:", "sb", None, True),
    (b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret", "identity", "k8s\\x00 (plain protobuf)", None, None, False),
    (b'{"kind":"Secret","data":{"password":"cGFzcw=="}}', "identity", "{ (plain JSON)", None, None, False),
    (b"k8s:enc:identity", "identity", "k8s:enc:identity", None, None, False),
    (b"k8s:enc:kms:v2:\x00bad\xff:" + os.urandom(16), "unknown", "k8s:enc: (provider not readable)", None, None, False),
    (b"\x8f\x01random-bytes", "unknown", "(unrecognised)", None, None, False),
    (b"", "unknown", "(unrecognised)", None, None, False),
]


# ids from the index and provider: the values hold random bytes, and pytest-xdist needs equal ids on every worker
@pytest.mark.parametrize("value,provider,prefix,name,key_id,encrypted", CLASSIFY_CASES,
                         ids=["%d-%s" % (index, case[1]) for index, case in enumerate(CLASSIFY_CASES)])
def test_classify(value, provider, prefix, name, key_id, encrypted):
    found = envelope.classify(value)
    assert found == dict(provider=provider, prefix=prefix, encrypted=encrypted, name=name, key_id=key_id)


def test_classify_shows_nothing_past_the_provider_name():
    secret = b"hunter2-very-secret-value"
    for value in (b"k8s:enc:aescbc:v1:key1:" + secret, b"k8s\x00" + secret, b"{" + secret, secret,
                  b"k8s:enc:kms:v2:p:" + field(1, secret) + field(2, b"kid")):
        text = repr(envelope.classify(value))
        assert "hunter2" not in text and "secret-value" not in text


def test_target_reasons():
    kms = envelope.classify(KMS_V2)
    assert envelope.Target().miss(kms) is None
    assert envelope.Target("heracles-prod-kms", KEY_ID).miss(kms) is None
    assert envelope.Target("other-kms").miss(kms) == "KMS v2 provider heracles-prod-kms, expected other-kms"
    assert envelope.Target(key_id="new").miss(kms) == "KMS v2 key ID %s, expected new" % KEY_ID
    assert envelope.Target().miss(envelope.classify(b"k8s\x00x")) == "written by identity (NOT encrypted), not KMS v2"
    assert envelope.Target("a").prefix == "k8s:enc:kms:v2:a:" and envelope.Target().prefix == "k8s:enc:kms:v2:"
    with pytest.raises(envelope.EnvelopeError, match="without ':'"):
        envelope.Target("a:b")


def test_scan_counts_by_namespace_and_ignores_other_keys():
    scan = envelope.SecretsScan("/registry", envelope.Target("heracles-prod-kms"))
    scan.inspect(b"/registry/secrets/payments/db", KMS_V2)
    scan.inspect(b"/registry/secrets/orders/redis", b"k8s\x00x")
    scan.inspect(b"/registry/secrets/orders", b"k8s\x00x")  # not <ns>/<name>
    scan.inspect(b"/registry/secrets/a/b/c", b"k8s\x00x")
    result = scan.result()
    assert (result["total"], result["on_target"], result["other_keys"]) == (2, 1, 2)
    assert result["namespaces"] == {"payments": {"total": 1, "on_target": 1}, "orders": {"total": 1, "on_target": 0}}
    assert [s["secret"] for s in result["secrets_not_on_target"]] == ["orders/redis"]
    assert "mod_revision" not in result["secrets_not_on_target"][0]


@pytest.mark.parametrize("prefix,expected", [
    ("/registry", "/registry/secrets/"), ("/registry/", "/registry/secrets/"), ("registry", "/registry/secrets/"),
    ("/custom/prefix", "/custom/prefix/secrets/"), ("", "/secrets/"), ("/", "/secrets/")])
def test_secrets_prefix(prefix, expected):
    assert envelope.secrets_prefix(prefix) == expected


def test_prefix_range_end():
    assert etcd_v3.prefix_range_end(b"/registry/secrets/") == b"/registry/secrets0"
    assert etcd_v3.prefix_range_end(b"a\xff") == b"b"
    assert etcd_v3.prefix_range_end(b"\xff\xff") == b"\x00"


@pytest.mark.parametrize("url,ok", [("https://10.0.0.1:2379", True), ("http://127.0.0.1:2379/", True),
                                    ("10.0.0.1:2379", False), ("https://", False), ("", False)])
def test_check_endpoint(url, ok):
    if ok:
        assert etcd_v3.check_endpoint(url) == url.rstrip("/")
    else:
        with pytest.raises(etcd_v3.EtcdError, match="not a URL with a scheme"):
            etcd_v3.check_endpoint(url)


def test_namespaces_must_be_kubernetes_names():
    assert envelope.check_namespaces(["payments", "kube-system"]) == ["payments", "kube-system"]
    for bad in ("Payments", "a/b", "", "-x"):
        with pytest.raises(envelope.EnvelopeError, match="not a Kubernetes namespace name"):
            envelope.check_namespaces([bad])


@pytest.mark.parametrize("marker,force,rewrite,words", [
    (None, False, True, "no re-encryption marker"),
    ({}, False, True, "no re-encryption marker"),
    ({"keyArn": "arn:old"}, False, True, "the marker records key arn:old, the cluster encrypts with arn:k"),
    ({"keyArn": "arn:k", "reencryptedAt": "2026-01-01T00:00:00Z"}, False, False, "nothing to do"),
    ({"keyArn": "arn:k"}, True, True, "force=true"),
])
def test_marker_decision(marker, force, rewrite, words):
    decided, reason = envelope.marker_decision(marker, "arn:k", force)
    assert decided is rewrite and words in reason


def test_cluster_key_arn_reads_the_secrets_entry_only():
    assert cluster_key_arn({}) is None and cluster_key_arn({"encryptionConfig": []}) is None
    assert cluster_key_arn({"encryptionConfig": [{"resources": ["configmaps"], "provider": {"keyArn": "x"}},
                                                 {"resources": ["secrets"], "provider": {"keyArn": "arn:k"}}]}) == "arn:k"


# ---------------------------------------------------------------- secrets_kube
class ApiError(Exception):
    def __init__(self, status, body="{}"):
        super(ApiError, self).__init__("(%s)" % status)
        self.status, self.reason, self.body = status, "Reason%s" % status, body


class FakeCore:
    """read/replace of one Secret; ``script`` is the sequence of PUT outcomes (an int status or 'ok')."""

    def __init__(self, script, exists=True):
        self.script = list(script)
        self.exists = exists
        self.puts = 0
        self.reads = 0

    def read_namespaced_secret(self, name, namespace, **kw):
        self.reads += 1
        if not self.exists:
            raise ApiError(404)
        return b'{"metadata": {"name": "%s", "resourceVersion": "%d"}, "data": {"k": "c2VjcmV0LXZhbHVl"}}' % (
            name.encode(), self.reads)

    def replace_namespaced_secret(self, name, namespace, body, **kw):
        self.puts += 1
        assert body["kind"] == "Secret" and body["apiVersion"] == "v1" and body["metadata"]["resourceVersion"]
        outcome = self.script.pop(0)
        if outcome != "ok":
            raise ApiError(outcome, '{"kind": "Status", "message": "nope"}')
        return b"{}"


def test_rewrite_retries_conflicts_and_transient_errors_then_gives_up():
    core = FakeCore([409, 503, "ok"])
    assert secrets_kube.rewrite_secret(core, "ns", "db", sleep=lambda s: None) == ("rewritten", 1)
    assert (core.reads, core.puts) == (2, 3)  # a conflict re-reads, a 503 retries the same object
    with pytest.raises(secrets_kube.KubeError, match="still conflicting after 3 attempts"):
        secrets_kube.rewrite_secret(FakeCore([409, 409, 409]), "ns", "db", retries=2, sleep=lambda s: None)
    with pytest.raises(secrets_kube.KubeError, match=r"forbidden \(403 Reason403: nope\)"):
        secrets_kube.rewrite_secret(FakeCore([403]), "ns", "db", sleep=lambda s: None)
    assert secrets_kube.rewrite_secret(FakeCore([], exists=False), "ns", "db") == ("gone", 0)
    assert secrets_kube.rewrite_secret(FakeCore([404]), "ns", "db") == ("gone", 0)


def test_error_messages_never_quote_secret_data():
    obj = {"data": {"password": "c2VjcmV0LXZhbHVl"}}  # secret-value
    for body in ('{"message": "bad value secret-value"}', '{"message": "bad c2VjcmV0LXZhbHVl"}'):
        err = secrets_kube.describe_error(ApiError(422, body), "Rewriting Secret a/b", obj)
        assert "secret-value" not in str(err) and "c2VjcmV0LXZhbHVl" not in str(err)
        assert "message withheld" in str(err)
    err = secrets_kube.describe_error(ApiError(422, '{"message": "field is immutable"}'), "Rewriting Secret a/b", obj)
    assert "field is immutable" in str(err)


# ---------------------------------------------------------------- contracts
def _options(fragment):
    return yaml.safe_load(fragment)["options"]


@pytest.mark.parametrize("fragment,spec", [
    (ModuleDocFragment.DOCUMENTATION, dict(etcd_v3.ETCD_SPEC, **envelope.TARGET_SPEC)),
    (ModuleDocFragment.AWS, AWS_SPEC),
    (kube_fragment.ModuleDocFragment.DOCUMENTATION, secrets_kube.KUBE_SPEC),
])
def test_doc_fragment_documents_the_spec_exactly(fragment, spec):
    docs = _options(fragment)
    assert sorted(docs) == sorted(spec)
    for name, opt in spec.items():
        assert docs[name].get("type", "str") == opt.get("type", "str"), name
        assert docs[name].get("elements") == opt.get("elements"), name
        assert docs[name].get("default") == opt.get("default"), name
        assert docs[name].get("choices") == opt.get("choices"), name


def test_role_defaults_equal_the_argument_specs():
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name]["default"] == value, name
        assert name.startswith("envelope_encryption_") and options[name].get("description"), name
