"""Envelope encryption you can check (issue 14, item 8): k8s_secrets_encryption_info and k8s_secrets_reencrypt.

* Self-managed: a real etcd (TLS, client certificates) holds Secrets as kube-apiserver stores them; the info module
  reads them raw and reports each by provider. Re-encryption runs against tests/lib/secretsapi.py, a small
  Kubernetes API for Secrets that stores them in that same etcd through an emulated EncryptionConfiguration (KMS
  v2 first), so a rewrite really changes the bytes in etcd, and a rerun finds nothing to do.
* EKS: moto in server mode on 127.0.0.1 serves DescribeCluster with ``encryptionConfig`` (moto 5.2 keeps what
  CreateCluster was given) and KMS DescribeKey/GetKeyRotationStatus/DisableKey; the API for Secrets is the same
  small server with in-memory storage.

Every module run's stdout and stderr is searched for the Secret values and the raw stored values: none may appear.
"""

import base64
import json
import os
import secrets
import subprocess
import sys

import boto3
import pytest

from etcdserver import EtcdServer, require_etcd
from heracles_playbook import recap
from heracles_testlib import ROOT, env, find_leaks, run_module
from secretsapi import EtcdStorage, MemoryStorage, Providers, SecretsApi, kms_v2_value, secret

KMS_NAME = "heracles-kms"
KMS_KEY_ID = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
REGION = "eu-west-1"


def windows(text, size):
    return [text[i:i + size] for i in range(0, max(1, len(text) - size + 1))]


class Outputs:
    """Every module and playbook output of a test, and the values that must never be in them."""

    def __init__(self):
        self.texts = []
        self.needles = []

    def run(self, name, args, check=False, diff=False):
        res = run_module(name, args, check=check, diff=diff)
        self.texts.append(("%s%s" % (name, " --check" if check else ""), res.stdout + res.stderr))
        return res

    def secret_values(self, *values):
        """Any 12 consecutive characters of a Secret value, or the value in base64 (as in a Secret's data)."""
        for value in values:
            self.needles += windows(value, 12) + [base64.b64encode(value.encode()).decode()]

    def raw_values(self, *raws):
        """The stored value in base64 (as etcd's gateway sends it); for encrypted values also any 16 consecutive
        characters of the bytes past the prefix, as any output could render them (latin-1 text, Python bytes
        escapes, either in JSON, base64 at each alignment)."""
        for raw in raws:
            self.needles.append(base64.b64encode(raw).decode())
            if not raw.startswith(b"k8s:enc:"):
                continue  # plain objects: their metadata is public, their data values are in secret_values
            cut = raw.index(b":", 20) + 1
            body = raw[cut:]
            text, escaped = body.decode("latin-1"), repr(body)[2:-1]
            for form in (text, escaped, json.dumps(text)[1:-1], json.dumps(escaped)[1:-1]):
                self.needles += windows(form, 16)
            for shift in range(3):
                encoded = base64.b64encode(raw[cut + shift:]).decode()
                self.needles += windows(encoded, 16)

    def assert_no_leaks(self):
        assert self.texts
        assert len(self.needles) > 100
        # the KMS v2 key ID is stored in clear inside EncryptedObject and reported on purpose: not a leak
        needles = sorted(set(n for n in self.needles if len(n) >= 12 and n not in KMS_KEY_ID))
        assert find_leaks(needles, self.texts) == []


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    require_etcd()
    server = EtcdServer(tmp_path_factory.mktemp("etcd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def clean_etcd(etcd):
    etcd.delete_prefix(b"/registry/")
    return etcd


@pytest.fixture()
def out():
    return Outputs()


def etcd_args(etcd, **kw):
    args = etcd.module_args()
    args.update(kw)
    return args


# ---------------------------------------------------------------- self-managed: verify
def test_verify_reads_etcd_and_reports_each_secret_by_provider_without_any_value(clean_etcd, out):
    etcd = clean_etcd
    plaintext = "orders-redis-password-" + secrets.token_hex(8)
    raw = {
        b"/registry/secrets/payments/db": kms_v2_value(KMS_NAME, KMS_KEY_ID, os.urandom(64)),
        # identity: the plain protobuf envelope; the value is readable by anyone with etcd access
        b"/registry/secrets/orders/redis": b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12" + plaintext.encode() + b"\x1a\x00",
        b"/registry/secrets/orders/session": b"k8s:enc:aescbc:v1:key1:" + os.urandom(48),
    }
    for key, value in raw.items():
        etcd.put(key, value)
    etcd.put(b"/registry/configmaps/orders/settings", b"k8s\x00not-a-secret")  # outside /registry/secrets/
    out.secret_values(plaintext)
    out.raw_values(*raw.values())

    res = out.run("k8s_secrets_encryption_info", etcd_args(etcd, kms_provider_name=KMS_NAME, fail_on_findings=False))
    assert not res.failed, res
    assert res["changed"] is False and res["ok"] is False
    scan = res["etcd"]
    assert (scan["total"], scan["on_target"], scan["not_on_target"]) == (3, 1, 2)
    assert scan["by_provider"] == {"kms-v2": 1, "identity": 1, "aescbc": 1}
    assert scan["by_prefix"] == {"k8s:enc:kms:v2:heracles-kms:": 1, "k8s\\x00 (plain protobuf)": 1,
                                 "k8s:enc:aescbc:v1:key1:": 1}
    assert scan["kms_v2_key_ids"] == {KMS_KEY_ID: 1}
    assert scan["namespaces"] == {"payments": {"total": 1, "on_target": 1}, "orders": {"total": 2, "on_target": 0}}
    assert sorted((s["secret"], s["provider"], s["prefix"]) for s in scan["secrets_not_on_target"]) == [
        ("orders/redis", "identity", "k8s\\x00 (plain protobuf)"),
        ("orders/session", "aescbc", "k8s:enc:aescbc:v1:key1:")]
    assert [f["check"] for f in res["findings"]] == ["secrets_encryption"]

    # the default fails, naming the Secrets and what to do
    res = out.run("k8s_secrets_encryption_info", etcd_args(etcd, kms_provider_name=KMS_NAME))
    assert res.failed and res["changed"] is False
    for words in ("2 of 3 Secrets in etcd are not written by KMS v2 provider heracles-kms", "orders/redis",
                  "orders/session", "identity (NOT encrypted): 1", "aescbc (local key): 1",
                  "EncryptionConfiguration", "envelope_encryption_reencrypt=true"):
        assert words in res["msg"], (words, res["msg"])

    # another provider name or key ID is not on target either
    res = out.run("k8s_secrets_encryption_info",
                  etcd_args(etcd, kms_v2_key_id="some-other-key", namespaces=["payments"], fail_on_findings=False))
    assert res["etcd"]["total"] == 1 and res["etcd"]["secrets_not_on_target"][0]["reason"] == \
        "KMS v2 key ID %s, expected some-other-key" % KMS_KEY_ID

    # TLS: without the client certificate etcd refuses, and the message says which options to set
    res = out.run("k8s_secrets_encryption_info", dict(etcd_endpoints=[etcd.url], etcd_ca_cert=etcd.ca_cert))
    assert res.failed and "TLS failed" in res["msg"] and "etcd_client_cert/etcd_client_key" in res["msg"], res["msg"]
    out.assert_no_leaks()


# ---------------------------------------------------------------- self-managed: re-encrypt
def seed_api(api, out):
    """Four Secrets, each stored by a different provider (as after turning encryption on and changing it twice)."""
    values = {}
    plan = [("payments", "db", "kms-v2"), ("orders", "redis", "identity"), ("orders", "session", "aescbc"),
            ("kube-system", "bootstrap", "identity")]
    for namespace, name, provider in plan:
        value = "%s-%s-%s" % (namespace, name, secrets.token_hex(10))
        values["%s/%s" % (namespace, name)] = value
        api.create(secret(namespace, name, {"password": value, "user": name + "-user"}), provider=provider)
        out.secret_values(value)
    for value, _rev in [api.storage.get(api.key("secrets", ns, n)) for ns, n, _p in plan]:
        out.raw_values(value)
    return values


def stored(etcd):
    return etcd.items(b"/registry/secrets/")


@pytest.fixture()
def etcd_api(clean_etcd, tmp_path):
    api = SecretsApi(EtcdStorage(clean_etcd), Providers(write="kms-v2", kms_name=KMS_NAME, kms_key_id=KMS_KEY_ID))
    api.start()
    try:
        api.kubeconfig_path = api.kubeconfig(str(tmp_path / "kubeconfig"))
        yield api
    finally:
        api.stop()


def test_reencrypt_rewrites_only_what_etcd_shows_is_not_kms_v2_then_nothing(clean_etcd, etcd_api, out):
    etcd, api = clean_etcd, etcd_api
    values = seed_api(api, out)
    args = etcd_args(etcd, kubeconfig=api.kubeconfig_path, kms_provider_name=KMS_NAME)
    before = stored(etcd)

    # --check: counts, reads etcd only, writes nothing
    res = out.run("k8s_secrets_reencrypt", args, check=True, diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["mode"] == "etcd"
    assert (res["selected"], res["rewritten"], res["left_alone"]) == (3, 3, 1)
    assert res["diff"]["before"] == {"orders/redis": "k8s\\x00 (plain protobuf)", "orders/session":
                                     "k8s:enc:aescbc:v1:key1:", "kube-system/bootstrap": "k8s\\x00 (plain protobuf)"}
    assert set(res["diff"]["after"].values()) == {"k8s:enc:kms:v2:heracles-kms:"}
    assert api.requests == [] and stored(etcd) == before

    # the real run: one PUT conflicts (another writer), is re-read and retried
    api.conflict_once.add("orders/redis")
    res = out.run("k8s_secrets_reencrypt", args)
    assert not res.failed, res
    assert res["changed"] is True and (res["selected"], res["rewritten"], res["conflicts"]) == (3, 3, 1)
    assert res["namespaces"]["orders"] == dict(selected=2, rewritten=2, gone=0, failed=0, conflicts=1)
    assert res["still_not_on_target"] == [] and res["gone"] == [] and res["failed"] == []
    assert len(api.calls("PUT", "/secrets/redis")) == 2 and api.calls("PUT", "/secrets/db") == []
    after = stored(etcd)
    assert all(value.startswith(b"k8s:enc:kms:v2:heracles-kms:") for value, _rev in after.values())
    assert after[b"/registry/secrets/payments/db"] == before[b"/registry/secrets/payments/db"]  # left alone
    for ref, value in values.items():  # same data, now readable through the API as before
        namespace, name = ref.split("/")
        obj, _stale = api.load("secrets", namespace, name)
        assert base64.b64decode(obj["data"]["password"]).decode() == value
    for value, _rev in after.values():
        out.raw_values(value)

    # rerun: etcd shows every Secret on target, nothing is written
    calls = len(api.requests)
    res = out.run("k8s_secrets_reencrypt", args)
    assert not res.failed and res["changed"] is False and res["selected"] == 0 and res["left_alone"] == 4, res
    assert len(api.requests) == calls and stored(etcd) == after

    res = out.run("k8s_secrets_encryption_info", etcd_args(etcd, kms_provider_name=KMS_NAME))
    assert not res.failed and res["ok"] is True and res["etcd"]["on_target"] == 4, res
    out.assert_no_leaks()


def test_reencrypt_skips_a_vanished_secret_and_fails_when_the_api_server_does_not_write_kms_v2(
        clean_etcd, etcd_api, out):
    etcd, api = clean_etcd, etcd_api
    seed_api(api, out)
    args = etcd_args(etcd, kubeconfig=api.kubeconfig_path, namespaces=["orders"])
    api.vanish.add("orders/session")
    api.providers.write = "identity"  # an API server whose EncryptionConfiguration lists identity first

    res = out.run("k8s_secrets_reencrypt", args)
    assert res.failed and res["gone"] == ["orders/session"], res
    assert [s["secret"] for s in res["still_not_on_target"]] == ["orders/redis"]
    assert "still not written by KMS v2 in etcd: orders/redis" in res["msg"]
    assert "first provider of the EncryptionConfiguration on every API server" in res["msg"]
    assert api.calls("PUT", "/namespaces/kube-system/") == []  # namespaces=[orders]
    out.assert_no_leaks()


# ---------------------------------------------------------------- EKS (moto)
@pytest.fixture()
def aws(aws_env):
    kms = boto3.client("kms", endpoint_url=aws_env, region_name=REGION)
    eks = boto3.client("eks", endpoint_url=aws_env, region_name=REGION)
    sfx = secrets.token_hex(3)

    def key(alias=None, rotation=True, enabled=True):
        meta = kms.create_key(Description="k8s secrets %s" % sfx)["KeyMetadata"]
        if alias:
            kms.create_alias(AliasName="alias/" + alias, TargetKeyId=meta["KeyId"])
        if rotation:
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        if not enabled:
            kms.disable_key(KeyId=meta["KeyId"])
        return meta["Arn"]

    def cluster(name, key_arn=None):
        extra = {"encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": key_arn}}]} if key_arn else {}
        eks.create_cluster(name="%s-%s" % (name, sfx), roleArn="arn:aws:iam::123456789012:role/eks",
                           resourcesVpcConfig={"subnetIds": ["subnet-0a"]}, **extra)
        return "%s-%s" % (name, sfx)

    class Aws:
        pass

    a = Aws()
    a.endpoint, a.sfx, a.key, a.cluster, a.kms = aws_env, sfx, key, cluster, kms
    a.conn = dict(aws_region=REGION, aws_endpoint_url=aws_env)
    return a


def _eks_case(cid, setup, expect):
    return pytest.param(setup, expect, id=cid)


EKS_CASES = [
    _eks_case("encrypted-with-the-stack-key", lambda a: (a.cluster("good", a.key("stack-%s" % a.sfx)),
                                                         "alias/stack-%s" % a.sfx), None),
    _eks_case("no-encryption-config", lambda a: (a.cluster("plain"), a.key("stack-%s" % a.sfx)),
              ["does not encrypt Secrets with a KMS key", "aws eks associate-encryption-config --cluster-name plain-",
               "--region eu-west-1", '"resources":["secrets"]', "envelope_encryption_reencrypt=true"]),
    _eks_case("other-key", lambda a: (a.cluster("other", a.key()), a.key("stack-%s" % a.sfx)),
              ["encrypts Secrets with KMS key {cluster_key}, not the stack's key {stack_key}",
               "cannot change a cluster's Secrets key"]),
    _eks_case("disabled-key", lambda a: (a.cluster("dis", a.key("dis-%s" % a.sfx, enabled=False)),
                                         "alias/dis-%s" % a.sfx),
              ["is Disabled, not Enabled", "aws kms enable-key --key-id {stack_key}"]),
    _eks_case("rotation-off", lambda a: (a.cluster("norot", a.key("norot-%s" % a.sfx, rotation=False)),
                                         "alias/norot-%s" % a.sfx),
              ["Automatic rotation of KMS key {stack_key} is off", "aws kms enable-key-rotation"]),
]


@pytest.mark.parametrize("setup,expect", EKS_CASES)
def test_verify_eks(aws, out, setup, expect):
    cluster_name, key = setup(aws)
    res = out.run("k8s_secrets_encryption_info", dict(aws.conn, cluster_name=cluster_name, kms_key=key))
    if expect is None:
        assert not res.failed and res["ok"] is True, res
        assert res["eks"]["key_arn"] == res["eks"]["expected_key_arn"] and res["eks"]["key"]["rotation_enabled"]
        return
    assert res.failed and res["changed"] is False and res["ok"] is False, res
    stack_key = res["eks"]["expected_key_arn"]
    cluster_key = res["eks"]["key_arn_resolved"]
    assert stack_key.startswith("arn:aws:kms:eu-west-1:")
    for words in expect:
        words = words.format(stack_key=stack_key, cluster_key=cluster_key)
        assert words in res["msg"], (words, res["msg"])


@pytest.fixture()
def memory_api(tmp_path):
    api = SecretsApi(MemoryStorage(), Providers(write="kms-v2"))
    api.start()
    try:
        api.kubeconfig_path = api.kubeconfig(str(tmp_path / "kubeconfig"))
        yield api
    finally:
        api.stop()


def test_reencrypt_eks_rewrites_every_secret_once_per_key_recorded_in_a_marker(aws, memory_api, out):
    api = memory_api
    values = seed_api(api, out)
    api.create(secret("payments", "api", {"token": "tok-" + secrets.token_hex(8)}), provider="identity")
    stack_key = aws.key("eks-%s" % aws.sfx)
    name = aws.cluster("reenc", stack_key)
    args = dict(aws.conn, cluster_name=name, kms_key="alias/eks-%s" % aws.sfx, kubeconfig=api.kubeconfig_path,
                page_size=2)

    res = out.run("k8s_secrets_reencrypt", args, check=True, diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["mode"] == "eks" and "no re-encryption marker" in res["reason"]
    assert res["rewritten"] == 5 and res["marker"]["written"] is True and res["marker"]["before"] is None
    assert res["diff"]["after"]["marker"]["keyArn"] == stack_key
    assert api.calls("PUT") == [] and api.calls("POST") == []
    assert len(api.calls("GET", "/api/v1/secrets")) == 3  # 5 Secrets, pages of 2

    res = out.run("k8s_secrets_reencrypt", args)
    assert not res.failed and res["changed"] is True and res["rewritten"] == 5, res
    assert len(api.calls("PUT", "/secrets/")) == 5 and len(api.calls("POST", "/configmaps")) == 1
    marker, _stale = api.load("configmaps", "kube-system", "heracles-secrets-reencrypted")
    assert marker["data"]["keyArn"] == stack_key and marker["data"]["secrets"] == "5"
    assert marker["data"]["cluster"] == name
    items, _revision = api.storage.range(b"/registry/secrets/")
    assert len(items) == 5
    for key, value, _mod in items:
        assert value.startswith(b"k8s:enc:kms:v2:"), key
        out.raw_values(value)
    for ref, value in values.items():
        obj, _stale = api.load("secrets", *ref.split("/"))
        assert base64.b64decode(obj["data"]["password"]).decode() == value

    puts = len(api.calls("PUT"))
    res = out.run("k8s_secrets_reencrypt", args)
    assert not res.failed and res["changed"] is False and res["selected"] == 0, res
    assert "nothing to do" in res["reason"] and len(api.calls("PUT")) == puts

    res = out.run("k8s_secrets_reencrypt", dict(args, force=True, namespaces=["payments"]))
    assert not res.failed and res["changed"] is True and res["rewritten"] == 2 and res["marker"]["written"] is False

    # a cluster without encryption: nothing is rewritten, the message says how to enable it
    plain = aws.cluster("plainre")
    res = out.run("k8s_secrets_reencrypt", dict(args, cluster_name=plain))
    assert res.failed and res["changed"] is False and res["rewritten"] == 0, res
    assert "does not encrypt Secrets with a KMS key" in res["msg"] and "associate-encryption-config" in res["msg"]
    out.assert_no_leaks()


# ---------------------------------------------------------------- the runbook
def test_runbook_verifies_reencrypts_and_verifies_again_then_changes_nothing(clean_etcd, etcd_api, out):
    etcd, api = clean_etcd, etcd_api
    seed_api(api, out)
    extra_vars = dict(envelope_encryption_mode="self-managed", envelope_encryption_reencrypt=True,
                      envelope_encryption_kms_provider_name=KMS_NAME, envelope_encryption_kubeconfig=api.kubeconfig_path,
                      envelope_encryption_etcd_ca_cert=etcd.ca_cert, envelope_encryption_etcd_client_cert=etcd.client_cert,
                      envelope_encryption_etcd_client_key=etcd.client_key)
    # endpoints as an operator types them on the command line: a comma-separated string
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "inventories/local",
           "playbooks/envelope-encryption.yml", "-e", json.dumps(extra_vars),
           "-e", "envelope_encryption_etcd_endpoints=%s" % etcd.url]

    def play(label, *args):
        proc = subprocess.run(cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                              env=env({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}))
        out.texts.append((label, proc.stdout + proc.stderr))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        return proc

    proc = play("playbook --check", "--check")
    assert api.calls("PUT") == []
    assert "would rewrite: 3 of 3 selected" in proc.stdout

    proc = play("playbook")
    assert recap(proc)["changed"] == 1 and len(api.calls("PUT")) == 3
    assert "4 on KMS v2 provider heracles-kms, 0 not" in proc.stdout

    proc = play("playbook rerun")
    assert recap(proc)["changed"] == 0 and len(api.calls("PUT")) == 3
    out.assert_no_leaks()
