"""IAM and KMS policy documents, built by pure functions (dicts in, dicts out).

Every action list here is exact: no ``*`` in a crypto or data action, every resource named. The unit
tests assert these lists per stack, so widening one is a visible, reviewed change.
"""

import json
import re

POLICY_VERSION = "2012-10-17"

# What Vault's awskms seal calls, and nothing else.
VAULT_UNSEAL_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt")
# What External Secrets Operator needs to read one secret / parameter (GetSecretValue + metadata).
ESO_SECRETSMANAGER_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
)
ESO_SSM_ACTIONS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
# The backup job writes objects (single PUT: the job sets the multipart threshold to 5 GB) under its prefix,
# encrypted with the backup key. No read, no list, no delete: old snapshots expire by lifecycle rule.
BACKUP_S3_ACTIONS = ("s3:PutObject",)
BACKUP_KMS_ACTIONS = ("kms:GenerateDataKey",)
# The EKS control plane role encrypts and decrypts the data keys of Kubernetes Secrets.
EKS_SECRETS_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt")
# The principal that creates the cluster lets EKS create its grant on the key (AWS resources only).
EKS_CREATOR_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey")
# Operators store and read Vault's init material (recovery keys, root token) in Secrets Manager.
INIT_MATERIAL_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
# Restoring a snapshot: operators read objects encrypted with the backup key through S3.
BACKUP_RESTORE_KMS_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
# Key administrators manage the key but cannot use it: no Encrypt/Decrypt/GenerateDataKey/ReEncrypt/CreateGrant,
# and no DisableKeyRotation (rotation stays on).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# The account principal's statement in every key policy (when the stack names its account root). AWS's default
# statement gives the account root kms:* so that IAM administrators can always recover a key whose administrators
# were deleted (KMS developer guide, "Default key policy": "reduces the risk of the key becoming unmanageable").
# Recovering needs control of the policy, not use of the key: with these actions an IAM principal of the account that
# its IAM policy allows can read and rewrite the key policy (and stop a scheduled deletion), but no IAM policy alone
# can Encrypt/Decrypt/CreateGrant: any use the key policy does not name must first change the key policy, which
# CloudTrail records. So the narrower statement keeps the anti-lockout property without delegating use to IAM.
ACCOUNT_ROOT_SID = "AccountRootRecoversKeyPolicy"
ACCOUNT_ROOT_ACTIONS = ("kms:CancelKeyDeletion", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy")
# CloudWatch Logs encrypting one log group (CloudWatch Logs user guide, "Encrypt log data using AWS KMS": the
# wildcards Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, Describe* spelt out for a symmetric key).
LOGS_KMS_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo")
# S3 replication of the backup bucket (S3 user guide, "Setting up permissions" and "Replicating encrypted objects").
# ACLs are disabled (BucketOwnerEnforced) and snapshots carry no tags; delete markers are not replicated.
REPLICATION_SOURCE_BUCKET_ACTIONS = ("s3:GetReplicationConfiguration", "s3:ListBucket")
REPLICATION_SOURCE_OBJECT_ACTIONS = ("s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication")
# Object Lock retention and legal holds travel with the replica (both buckets have Object Lock).
REPLICATION_OBJECT_LOCK_ACTIONS = ("s3:GetObjectLegalHold", "s3:GetObjectRetention")
REPLICATION_DESTINATION_ACTIONS = ("s3:ReplicateObject",)
REPLICATION_SOURCE_KMS_ACTIONS = ("kms:Decrypt",)
# Encrypt the replica; Decrypt because the replica bucket uses an S3 Bucket Key, which S3 verifies with Decrypt.
REPLICATION_REPLICA_KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt")
# Actions that use key material or hand it out: only usage grants may carry them.
KMS_USE_ACTIONS = frozenset([
    "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
    "kms:ReEncryptTo", "kms:CreateGrant", "kms:Sign", "kms:Verify", "kms:GenerateMac", "kms:VerifyMac",
])


class KeyGrant:
    """One usage statement of a key policy: who may call which actions, under which condition.

    ``principal_type`` is ``AWS`` (IAM role ARNs) or ``Service`` (service principals such as
    ``logs.<region>.amazonaws.com``, always with a condition that names the one resource they act for).
    """

    def __init__(self, sid, principal_arns, actions, condition=None, principal_type="AWS"):
        if principal_type not in ("AWS", "Service"):
            raise ValueError("principal_type must be AWS or Service, got %r" % (principal_type,))
        if principal_type == "Service" and not condition:
            raise ValueError("%s: a service principal needs a condition naming the resource it acts for" % sid)
        self.sid = sid
        self.principal_arns = principal_arns
        self.actions = tuple(sorted(actions))
        self.condition = condition
        self.principal_type = principal_type

    def __repr__(self):
        return "KeyGrant(%r, %r, %r)" % (self.sid, self.principal_arns, self.actions)


def to_json(document):
    """Stable JSON (sorted keys) so a re-run produces no diff."""
    return json.dumps(document, sort_keys=True, indent=2)


def _principals(arns, kind="AWS"):
    arns = sorted(set(arns))
    if not arns:
        raise ValueError("a policy statement needs at least one principal")
    return {kind: arns[0] if len(arns) == 1 else arns}


ACCOUNT_ROOT = re.compile(r"^arn:[a-z-]+:iam::\d{12}:root$")


def account_root_arn(partition, account_id):
    """``arn:<partition>:iam::<account>:root``: the account principal (its IAM administrators), not the root user."""
    arn = "arn:%s:iam::%s:root" % (partition, account_id)
    if not ACCOUNT_ROOT.match(arn):
        raise ValueError("not an account principal: %r (partition %r, account id %r)" % (arn, partition, account_id))
    return arn


def key_policy(admin_arns, grants, account_root=None):
    """A key policy: administrators manage, each grant uses; nobody else (no account-root ``kms:*``).

    With ``account_root`` (``arn:<partition>:iam::<account>:root``) the policy also carries the statement that keeps
    the key recoverable by the account (``ACCOUNT_ROOT_ACTIONS``: policy control, no use), exactly once.
    """
    statements = [{
        "Sid": "KeyAdministration",
        "Effect": "Allow",
        "Principal": _principals(admin_arns),
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }]
    for grant in grants:
        if not grant.principal_arns:
            continue
        statement = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Principal": _principals(grant.principal_arns, getattr(grant, "principal_type", "AWS")),
            "Action": list(grant.actions),
            "Resource": "*",
        }
        if grant.condition:
            statement["Condition"] = grant.condition
        statements.append(statement)
    if account_root:
        if not ACCOUNT_ROOT.match(account_root):
            raise ValueError("account_root must be arn:<partition>:iam::<account>:root, got %r" % (account_root,))
        statements.append({
            "Sid": ACCOUNT_ROOT_SID,
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": list(ACCOUNT_ROOT_ACTIONS),
            "Resource": "*",
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def log_group_arn(partition, region, account_id, log_group_name):
    return "arn:%s:logs:%s:%s:log-group:%s" % (partition, region, account_id, log_group_name)


def logs_key_condition(group_arn):
    """Condition: CloudWatch Logs uses the key only for this one log group (its ARN is the encryption context)."""
    return {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}


def s3_bucket_key_condition(region, bucket_arn):
    """Condition: the key is used through S3 in ``region`` for ``bucket_arn`` (the encryption context of an S3 Bucket
    Key: the bucket's ARN, not the object's)."""
    return {"StringEquals": {"kms:ViaService": "s3.%s.amazonaws.com" % region,
                             "kms:EncryptionContext:aws:s3:arn": bucket_arn}}


def via_service(service, region):
    """Condition: the key is used only through ``service`` in ``region`` (S3, Secrets Manager)."""
    return {"StringEquals": {"kms:ViaService": "%s.%s.amazonaws.com" % (service, region)}}


def irsa_trust_policy(oidc_provider_arn, oidc_issuer, namespace, service_account, audience="sts.amazonaws.com"):
    """Trust for IAM Roles for Service Accounts: one provider, one ``sub``, one ``aud``.

    ``oidc_issuer`` is the issuer URL with or without ``https://``; the condition keys use it without.
    """
    issuer = oidc_issuer[len("https://"):] if oidc_issuer.startswith("https://") else oidc_issuer
    return {
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "AssumeFromServiceAccount",
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "%s:sub" % issuer: "system:serviceaccount:%s:%s" % (namespace, service_account),
                "%s:aud" % issuer: audience,
            }},
        }],
    }


def service_trust_policy(service):
    """Trust for an AWS service principal (the EKS control plane, EC2 nodes)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def vault_unseal_policy(unseal_key_arn):
    """Vault's role: exactly Encrypt, Decrypt and DescribeKey on the unseal key."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "VaultAutoUnseal",
            "Effect": "Allow",
            "Action": list(VAULT_UNSEAL_ACTIONS),
            "Resource": unseal_key_arn,
        }],
    }


def _prefix(prefix):
    prefix = prefix.strip("/")
    if not prefix:
        raise ValueError("a secrets prefix is required: the ESO role never reads the whole account")
    return prefix


def eso_read_policy(partition, region, account_id, prefix, kms_key_arns=()):
    """ESO's role: read Secrets Manager secrets and SSM parameters under ``prefix`` in one account and region."""
    prefix = _prefix(prefix)
    statements = [
        {
            "Sid": "ReadSecretsUnderPrefix",
            "Effect": "Allow",
            "Action": list(ESO_SECRETSMANAGER_ACTIONS),
            "Resource": "arn:%s:secretsmanager:%s:%s:secret:%s/*" % (partition, region, account_id, prefix),
        },
        {
            "Sid": "ReadParametersUnderPrefix",
            "Effect": "Allow",
            "Action": list(ESO_SSM_ACTIONS),
            "Resource": [
                "arn:%s:ssm:%s:%s:parameter/%s" % (partition, region, account_id, prefix),
                "arn:%s:ssm:%s:%s:parameter/%s/*" % (partition, region, account_id, prefix),
            ],
        },
    ]
    if kms_key_arns:
        statements.append({
            "Sid": "DecryptThroughSecretsManagerAndSsm",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": sorted(kms_key_arns),
            "Condition": {"StringEquals": {"kms:ViaService": [
                "secretsmanager.%s.amazonaws.com" % region, "ssm.%s.amazonaws.com" % region]}},
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def backup_write_policy(bucket_arn, prefix, backup_key_arn):
    """The backup role: PutObject under its prefix, SSE-KMS with the backup key only."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "WriteSnapshotsUnderPrefix",
                "Effect": "Allow",
                "Action": list(BACKUP_S3_ACTIONS),
                "Resource": "%s/%s*" % (bucket_arn, prefix),
                "Condition": {"StringEquals": {
                    "s3:x-amz-server-side-encryption": "aws:kms",
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": backup_key_arn,
                }},
            },
            {
                "Sid": "EncryptWithBackupKey",
                "Effect": "Allow",
                "Action": list(BACKUP_KMS_ACTIONS),
                "Resource": backup_key_arn,
            },
        ],
    }


def deny_insecure_transport(bucket_arn):
    """Every bucket policy's first statement: nothing on the bucket or its objects without TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, "%s/*" % bucket_arn],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def backup_bucket_policy(bucket_arn, backup_key_arn):
    """Deny anything but TLS, and any upload not encrypted with the backup key."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            deny_insecure_transport(bucket_arn),
            {
                "Sid": "DenyOtherEncryptionKeys",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": "%s/*" % bucket_arn,
                "Condition": {"StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": backup_key_arn}},
            },
        ],
    }


def replication_policy(source_bucket_arn, replica_bucket_arn, prefix, source_key_arn, replica_key_arn, region,
                       replica_region, object_lock=False):
    """The S3 replication role: read the snapshots under ``prefix``, write replicas, decrypt/encrypt through S3 only."""
    source_objects = list(REPLICATION_SOURCE_OBJECT_ACTIONS) + (list(REPLICATION_OBJECT_LOCK_ACTIONS) if object_lock
                                                                else [])
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "ReadReplicationConfiguration", "Effect": "Allow",
             "Action": list(REPLICATION_SOURCE_BUCKET_ACTIONS), "Resource": source_bucket_arn},
            {"Sid": "ReadSnapshotVersions", "Effect": "Allow", "Action": sorted(source_objects),
             "Resource": "%s/%s*" % (source_bucket_arn, prefix)},
            {"Sid": "WriteReplicas", "Effect": "Allow", "Action": list(REPLICATION_DESTINATION_ACTIONS),
             "Resource": "%s/%s*" % (replica_bucket_arn, prefix)},
            {"Sid": "DecryptSnapshotsThroughS3", "Effect": "Allow", "Action": list(REPLICATION_SOURCE_KMS_ACTIONS),
             "Resource": source_key_arn, "Condition": s3_bucket_key_condition(region, source_bucket_arn)},
            {"Sid": "EncryptReplicasThroughS3", "Effect": "Allow", "Action": list(REPLICATION_REPLICA_KMS_ACTIONS),
             "Resource": replica_key_arn, "Condition": s3_bucket_key_condition(replica_region, replica_bucket_arn)},
        ],
    }


def replica_bucket_policy(bucket_arn):
    """Deny anything but TLS, and every direct upload: only S3 replication (s3:ReplicateObject) writes replicas."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            deny_insecure_transport(bucket_arn),
            {
                "Sid": "DenyDirectUploads",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": "%s/*" % bucket_arn,
            },
        ],
    }
