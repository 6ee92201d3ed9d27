# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EKS Secrets encryption and its KMS key, through boto3: one function per AWS call, each mapping botocore
errors to a message that says what to do, and the checks built on them.

Calls: ``eks:DescribeCluster`` (``cluster.encryptionConfig``), ``kms:DescribeKey`` (resolves an alias or key ID
to the key ARN; ``KeyState``), ``kms:GetKeyRotationStatus``. All are reads.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.heracles.secrets.plugins.module_utils.envelope import SECRETS_RESOURCE, EnvelopeError

try:
    import boto3
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover
    HAS_BOTO3 = False

AWS_SPEC = dict(
    cluster_name=dict(type="str"),
    kms_key=dict(type="str", no_log=False),
    aws_region=dict(type="str"),
    aws_endpoint_url=dict(type="str"),
)

PERMISSIONS_HINT = ("The AWS identity needs eks:DescribeCluster on the cluster and kms:DescribeKey and "
                    "kms:GetKeyRotationStatus on the key (the operator role of pulumi/platform has them)")


def clients(region=None, endpoint_url=None):
    """``(eks, kms)`` boto3 clients."""
    if not HAS_BOTO3:
        raise EnvelopeError("Checking EKS and KMS needs boto3 on the host that runs the module",
                            "pip install boto3 (it is in requirements.txt)")
    try:
        return (boto3.client("eks", region_name=region, endpoint_url=endpoint_url),
                boto3.client("kms", region_name=region, endpoint_url=endpoint_url))
    except botocore.exceptions.NoRegionError:
        raise EnvelopeError("No AWS region for EKS and KMS", "Set aws_region (or AWS_REGION / AWS_DEFAULT_REGION)")
    except ValueError as exc:  # an endpoint_url botocore refuses
        raise EnvelopeError("aws_endpoint_url is not usable (%s)" % exc, "Give a URL such as https://eks.<region>.amazonaws.com")


def _error(exc, what, not_found_hint):
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or "?"
        message = "%s: %s: %s" % (what, code, err.get("Message") or "")
        if code in ("ResourceNotFoundException", "NotFoundException"):
            return EnvelopeError(message, not_found_hint)
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException",
                    "InvalidClientTokenId", "ExpiredTokenException"):
            return EnvelopeError(message, PERMISSIONS_HINT)
        return EnvelopeError(message, "Check the region and retry; nothing was changed")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return EnvelopeError("%s: no AWS credentials" % what,
                             "Run with the operator role's credentials (AWS_PROFILE, or aws sso login)")
    return EnvelopeError("%s: %s" % (what, exc), "Check aws_region, aws_endpoint_url and the network; nothing was changed")


def describe_cluster(eks, name, region):
    """``eks:DescribeCluster`` -> the ``cluster`` structure."""
    try:
        return eks.describe_cluster(name=name)["cluster"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise _error(exc, "Describing EKS cluster %s in %s" % (name, region or "the default region"),
                     "Check cluster_name and aws_region (the deployment block of vault/environments/<env>.yml)")


def describe_key(kms, key, region):
    """``kms:DescribeKey`` -> ``KeyMetadata`` (``key`` may be a key ID, key ARN, alias name or alias ARN)."""
    try:
        return kms.describe_key(KeyId=key)["KeyMetadata"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise _error(exc, "Describing KMS key %s in %s" % (key, region or "the default region"),
                     "Check kms_key: pulumi/platform creates alias/<clusterName>-k8s-secrets in the cluster's region")


def rotation_enabled(kms, key_arn, region):
    """``kms:GetKeyRotationStatus`` -> bool."""
    try:
        return bool(kms.get_key_rotation_status(KeyId=key_arn).get("KeyRotationEnabled"))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise _error(exc, "Reading the rotation status of KMS key %s" % key_arn, PERMISSIONS_HINT)


def cluster_key_arn(cluster):
    """The key ARN (or alias, as given to EKS) of the encryption config that covers Secrets, or None."""
    for entry in cluster.get("encryptionConfig") or []:
        if SECRETS_RESOURCE in (entry.get("resources") or []):
            return (entry.get("provider") or {}).get("keyArn") or None
    return None


def _finding(source, check, message, hint):
    return dict(source=source, check=check, message=message, hint=hint)


def associate_command(cluster_name, region, key_arn):
    config = json.dumps([{"resources": [SECRETS_RESOURCE], "provider": {"keyArn": key_arn}}], separators=(",", ":"))
    return ("aws eks associate-encryption-config --cluster-name %s --region %s --encryption-config '%s'"
            % (cluster_name, region or "<region>", config))


def check_key(kms, key, region, require_rotation=True, source="kms"):
    """``(facts, findings)`` of the KMS key ``key``: it exists, is Enabled, is a symmetric customer-managed key with
    rotation on (when ``require_rotation``)."""
    meta = describe_key(kms, key, region)
    arn = meta.get("Arn")
    facts = dict(key=key, arn=arn, key_id=meta.get("KeyId"), state=meta.get("KeyState"),
                 enabled=bool(meta.get("Enabled")), key_manager=meta.get("KeyManager"),
                 key_spec=meta.get("KeySpec") or meta.get("CustomerMasterKeySpec"), rotation_enabled=None)
    findings = []
    where = "--key-id %s --region %s" % (arn, region or "<region>")
    state = facts["state"]
    if state == "PendingDeletion":
        findings.append(_finding(source, "key_state", "KMS key %s is scheduled for deletion (%s)" % (
            arn, meta.get("DeletionDate") or "date unknown"),
            "Cancel it now: aws kms cancel-key-deletion %s && aws kms enable-key %s -- once deleted, every "
            "Secret encrypted with it is lost" % (where, where)))
    elif state != "Enabled":
        findings.append(_finding(source, "key_state", "KMS key %s is %s, not Enabled: the API server cannot "
                                 "decrypt Secrets with it (pods cannot start, writes fail)" % (arn, state),
                                 "Enable it: aws kms enable-key %s (find out who disabled it in CloudTrail)" % where))
    if facts["key_manager"] == "AWS":
        findings.append(_finding(source, "key_manager", "KMS key %s is AWS-managed, not the stack's customer-managed key"
                                 % arn, "Use the key pulumi/platform creates (alias/<clusterName>-k8s-secrets)"))
    if facts["key_spec"] and facts["key_spec"] != "SYMMETRIC_DEFAULT":
        findings.append(_finding(source, "key_spec", "KMS key %s is %s; envelope encryption needs SYMMETRIC_DEFAULT"
                                 % (arn, facts["key_spec"]), "Use the stack's symmetric key"))
    if require_rotation and facts["key_manager"] != "AWS":
        facts["rotation_enabled"] = rotation_enabled(kms, arn, region)
        if not facts["rotation_enabled"]:
            findings.append(_finding(source, "key_rotation", "Automatic rotation of KMS key %s is off" % arn,
                                     "Turn it on: aws kms enable-key-rotation %s (pulumi/platform keeps it on: "
                                     "pulumi up on the stack restores it)" % where))
    return facts, findings


def check_eks(eks, kms, cluster_name, region, kms_key, require_rotation=True):
    """``(facts, findings)``: the cluster encrypts Secrets with ``kms_key`` (compared as resolved key ARNs) and that
    key is Enabled with rotation on."""
    cluster = describe_cluster(eks, cluster_name, region)
    configured = cluster_key_arn(cluster)
    facts = dict(cluster=cluster_name, region=region, status=cluster.get("status"), version=cluster.get("version"),
                 arn=cluster.get("arn"), encrypted_resources=sorted(set(
                     r for entry in cluster.get("encryptionConfig") or [] for r in entry.get("resources") or [])),
                 key_arn=configured, key_arn_resolved=None, expected_key=kms_key, expected_key_arn=None, key=None)
    findings = []
    expected = describe_key(kms, kms_key, region)
    facts["expected_key_arn"] = expected.get("Arn")
    if cluster.get("status") not in (None, "ACTIVE"):
        findings.append(_finding("eks", "cluster_status", "EKS cluster %s is %s" % (cluster_name, cluster.get("status")),
                                 "Wait until it is ACTIVE (aws eks wait cluster-active --name %s --region %s) and rerun"
                                 % (cluster_name, region or "<region>")))
    if not configured:
        findings.append(_finding(
            "eks", "encryption_config",
            "EKS cluster %s does not encrypt Secrets with a KMS key: DescribeCluster shows no encryptionConfig for "
            "resources [secrets] (EKS 1.28+ default encryption uses an AWS-owned key, not the stack's key %s)"
            % (cluster_name, facts["expected_key_arn"]),
            "Associate the stack's key (irreversible; the cluster is UPDATING for a while): %s; then aws eks wait "
            "cluster-active --name %s --region %s and rewrite the existing Secrets: playbooks/envelope-encryption.yml "
            "-e envelope_encryption_reencrypt=true"
            % (associate_command(cluster_name, region, facts["expected_key_arn"]), cluster_name, region or "<region>")))
        return facts, findings
    resolved = describe_key(kms, configured, region)
    facts["key_arn_resolved"] = resolved.get("Arn")
    if facts["key_arn_resolved"] != facts["expected_key_arn"]:
        findings.append(_finding(
            "eks", "key_arn",
            "EKS cluster %s encrypts Secrets with KMS key %s, not the stack's key %s (kms_key %s)"
            % (cluster_name, facts["key_arn_resolved"], facts["expected_key_arn"], kms_key),
            "EKS cannot change a cluster's Secrets key: if kms_key is right, the cluster was created outside the "
            "stack -- recreate it from pulumi/platform (clusterMode create) and move the workloads; if the cluster is "
            "right, point kms_key at its key"))
    key_facts, key_findings = check_key(kms, facts["key_arn_resolved"], region, require_rotation, source="kms")
    facts["key"] = key_facts
    return facts, findings + key_findings
