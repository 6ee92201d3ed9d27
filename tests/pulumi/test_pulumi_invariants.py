"""The platform's security invariants, asserted by scanning what every stack and variant registers.

Nothing here reads the constants the program was written with (heracles_pulumi.policies) nor the policy pack's code:
every policy document is found by walking the registered inputs (any string that parses as a JSON document with a
``Statement``), every Helm value, store and key is read from its registration. Widening a constant (``"kms:*"`` among
the key-admin actions, ``"*"`` among ESO's) shows up here as a registered wildcard. The only shared input is the
reviewed allow-list pulumi/policy/allowlist.yml (read here as plain YAML).
"""

import fnmatch
import json
import os
import re

import pytest

import harness
import runs
from harness import unwrap

PLATFORM_VARIANTS = ("stack", "self-managed", "adopt", "openbao", "k8s-join")
ALLOWLIST = os.path.join(harness.PULUMI_DIR, "policy", "allowlist.yml")
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET_STORE = "kubernetes:external-secrets.io/v1:SecretStore"
CLUSTER_STORE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
# From the AWS KMS documentation, not from this repository: what uses key material or hands it out ...
KMS_USE = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
           "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
           "kms:CreateGrant", "kms:Sign", "kms:Verify", "kms:GenerateMac", "kms:VerifyMac", "kms:DeriveSharedSecret")
# ... and what manages the key (its policy, its life, its rotation).
KMS_MANAGE = ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:EnableKeyRotation",
              "kms:DisableKeyRotation", "kms:UpdateKeyDescription")


@pytest.fixture(params=PLATFORM_VARIANTS)
def run(request, stack):
    return runs.platform(stack, request.param)


# --- scanning --------------------------------------------------------------------------------------------------------
def _strings(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, "%s.%s" % (path, key) if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, "%s[%d]" % (path, index))
    elif isinstance(value, str):
        yield path, value


def policy_statements(run):
    """``[(resource, property path, statement)]`` of every JSON policy document anywhere in the registered inputs."""
    found = []
    for res in run.resources:
        for path, text in _strings(unwrap(res.inputs)):
            if '"Statement"' not in text:
                continue
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if isinstance(document, dict) and "Statement" in document:
                statements = document["Statement"]
                for statement in statements if isinstance(statements, list) else [statements]:
                    found.append((res, path, statement))
    return found


def _list(value):
    return value if isinstance(value, list) else [] if value is None else [value]


def _grants(statement, action):
    """Whether an Allow statement's Action patterns cover ``action`` (IAM matches case-insensitively)."""
    return any(fnmatch.fnmatch(action.lower(), pattern.lower()) for pattern in _list(statement.get("Action")))


def _broad_resource(resource):
    if resource.strip("*") == "":
        return True
    parts = resource.split(":", 5)
    if parts[0] != "arn" or len(parts) < 6:
        return False
    if any("*" in part for part in parts[1:5]):
        return True
    if parts[2] == "s3":
        return "*" in parts[5].split("/", 1)[0]
    return re.fullmatch(r"([^:/]+[:/])?\*", parts[5]) is not None


def wildcards(statement):
    """``[(element, value)]`` that are wildcards in an Allow statement (Deny statements only restrict)."""
    if statement.get("Effect") != "Allow":
        return []
    found = [(element, "present") for element in ("NotAction", "NotResource", "NotPrincipal") if element in statement]
    found += [("Action", action) for action in _list(statement.get("Action")) if "*" in action or "?" in action]
    found += [("Resource", resource) for resource in _list(statement.get("Resource")) if _broad_resource(resource)]
    principal = statement.get("Principal")
    principals = [principal] if isinstance(principal, str) else [
        value for values in (principal or {}).values() for value in _list(values)]
    found += [("Principal", value) for value in principals if "*" in value]
    return found


def allowlisted():
    """{(type, sid, element, value)} the reviewed allow-list admits."""
    out = set()
    for entry in harness.read_yaml(ALLOWLIST) or []:
        assert len(str(entry.get("why", "")).split()) >= 5, entry
        for sid in _list(entry["sid"]):
            for element, values in entry["allow"].items():
                out |= {(entry["type"], sid, element, value) for value in _list(values)}
    return out


# --- IAM, trust, KMS and S3 policies ---------------------------------------------------------------------------------
def test_no_wildcard_in_any_registered_allow_statement_outside_the_allowlist(run):
    found = policy_statements(run)
    # not vacuous: role policies, trusts, key policies and the bucket policy were all found
    assert {res.type for res, dummy, dummy in found} >= {
        "aws:iam/rolePolicy:RolePolicy", ROLE, KEY, "aws:s3/bucketPolicy:BucketPolicy"}
    allowed = allowlisted()
    offending = [(res.name, path, statement.get("Sid"), element, value)
                 for res, path, statement in found for element, value in wildcards(statement)
                 if (res.type, statement.get("Sid"), element, value) not in allowed]
    assert offending == []


def test_nobody_both_manages_and_uses_a_key(run):
    """Separation of duties in every key policy: no statement grants a management and a usage action together,
    and no Allow statement lets anyone turn rotation off."""
    key_statements = [(res.name, statement) for res, dummy, statement in policy_statements(run) if res.type == KEY]
    assert len({name for name, dummy in key_statements}) == len(run.of_type(KEY)) >= 4
    for name, statement in key_statements:
        if statement.get("Effect") != "Allow":
            continue
        manages = [action for action in KMS_MANAGE if _grants(statement, action)]
        uses = [action for action in KMS_USE if _grants(statement, action)]
        assert not (manages and uses), (name, statement.get("Sid"), manages, uses)
        assert not _grants(statement, "kms:DisableKeyRotation"), (name, statement.get("Sid"))


def test_every_kms_key_rotates_and_waits_at_least_seven_days_before_deletion(run):
    keys = run.of_type(KEY)
    assert keys
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True, key.name
        assert key.inputs.get("deletionWindowInDays", 30) >= 7, key.name


def test_every_bucket_is_sse_kms_with_a_stack_key_versioned_and_private(run):
    buckets = run.of_type("aws:s3/bucket:Bucket")
    assert buckets
    key_names = {key.name for key in run.of_type(KEY)}

    def settings(token, bucket):
        found = [res.inputs for res in run.of_type(token) if res.inputs.get("bucket") == bucket.name + "-id"]
        assert len(found) == 1, (token, bucket.name)
        return found[0]
    for bucket in buckets:
        (rule,) = settings("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                           bucket)["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms"
        assert default["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert default["kmsMasterKeyId"].rsplit("/", 1)[-1] in key_names
        assert settings("aws:s3/bucketVersioning:BucketVersioning", bucket)["versioningConfiguration"] == {
            "status": "Enabled"}
        block = settings("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        assert {flag: block[flag] for flag in (
            "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")} == dict.fromkeys(
                ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)


# --- IRSA ------------------------------------------------------------------------------------------------------------
SUBJECT = re.compile(r"system:serviceaccount:[a-z0-9][-a-z0-9.]*:[a-z0-9][-a-z0-9.]*")


def test_every_federated_trust_pins_one_service_account_and_the_sts_audience(run):
    federated = [(res.name, statement) for res, path, statement in policy_statements(run)
                 if res.type == ROLE and path == "assumeRolePolicy"
                 and "Federated" in (statement.get("Principal") or {})]
    assert len(federated) >= 3  # Vault, ESO, backup (+ EBS CSI when the stack creates the cluster)
    for name, statement in federated:
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity", name
        conditions = statement["Condition"]
        assert set(conditions) == {"StringEquals"}, name  # no StringLike next to it
        equals = conditions["StringEquals"]
        issuers = {key.rsplit(":", 1)[0] for key in equals}
        assert len(issuers) == 1 and set(equals) == {"%s:sub" % issuer for issuer in issuers} | {
            "%s:aud" % issuer for issuer in issuers}, name
        (issuer,) = issuers
        assert isinstance(equals["%s:sub" % issuer], str) and SUBJECT.fullmatch(equals["%s:sub" % issuer]), name
        assert equals["%s:aud" % issuer] == "sts.amazonaws.com", name


# --- Vault and ESO ---------------------------------------------------------------------------------------------------
def _vault_release(run):
    found = [unwrap(res.inputs) for res in run.of_type(RELEASE) if res.inputs["chart"] in ("vault", "openbao")]
    assert len(found) == 1
    return found[0]


def _block(text, header):
    """The bodies of ``header { ... }`` blocks (braces counted), in order."""
    bodies = []
    for match in re.finditer(re.escape(header) + r"\s*\{", text):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        bodies.append(text[match.end():index - 1])
    return bodies


def test_vault_serves_tls_only_with_three_raft_voters(run):
    values = _vault_release(run)["values"]
    assert values["global"]["tlsDisable"] is False
    ha = values["server"]["ha"]
    assert ha["enabled"] is True and ha["raft"]["enabled"] is True and ha["replicas"] >= 3
    assert values["server"].get("dev", {}).get("enabled") is not True
    hcl = ha["raft"]["config"]
    listeners = _block(hcl, 'listener "tcp"')
    assert listeners
    for listener in listeners:
        settings = dict(re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", listener, re.M))
        assert settings.get("tls_disable", "false") in ("false", "0"), settings
        assert settings.get("tls_cert_file") and settings.get("tls_key_file"), settings
    for address in re.findall(r"leader_api_addr\s*=\s*\"([^\"]+)\"", hcl):
        assert address.startswith("https://"), address
    for scheme in re.findall(r"auto_join_scheme\s*=\s*\"([^\"]+)\"", hcl):
        assert scheme == "https"


def test_eso_stores_reach_vault_over_https_and_stay_in_their_namespaces(run):
    stores = [unwrap(res.inputs) for res in run.of_type(SECRET_STORE)]
    cluster_stores = [unwrap(res.inputs) for res in run.of_type(CLUSTER_STORE)]
    assert stores and cluster_stores
    for store in stores:
        vault = store["spec"]["provider"].get("vault")
        if vault:
            assert vault["server"].startswith("https://"), store["metadata"]
        refs = re.findall(r'"serviceAccountRef": (\{[^{}]*\})', json.dumps(store["spec"]))
        assert refs and all("namespace" not in json.loads(ref) for ref in refs), store["metadata"]
    for store in cluster_stores:
        assert "vault" not in store["spec"]["provider"], store["metadata"]
        assert store["spec"].get("conditions"), store["metadata"]
        for condition in store["spec"]["conditions"]:
            selector = condition.get("namespaceSelector") or {}
            assert condition.get("namespaces") or selector.get("matchLabels") or selector.get("matchExpressions")
