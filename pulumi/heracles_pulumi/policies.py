"""IAM and KMS policy documents, built by pure functions (dicts in, dicts out).

Every action list here is exact: no ``*`` in a crypto or data action, every resource named. The unit
tests assert these lists per stack, so widening one is a visible, reviewed change.
"""

import json

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
# Actions that use key material or hand it out: only usage grants may carry them.
KMS_USE_ACTIONS = frozenset([
    "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
    "kms:ReEncryptTo", "kms:CreateGrant", "kms:Sign", "kms:Verify", "kms:GenerateMac", "kms:VerifyMac",
])


class KeyGrant:
    """One usage statement of a key policy: who may call which actions, under which condition."""

    def __init__(self, sid, principal_arns, actions, condition=None):
        self.sid = sid
        self.principal_arns = principal_arns
        self.actions = tuple(sorted(actions))
        self.condition = condition

    def __repr__(self):
        return "KeyGrant(%r, %r, %r)" % (self.sid, self.principal_arns, self.actions)


def to_json(document):
    """Stable JSON (sorted keys) so a re-run produces no diff."""
    return json.dumps(document, sort_keys=True, indent=2)


def _principals(arns):
    arns = sorted(set(arns))
    if not arns:
        raise ValueError("a policy statement needs at least one principal")
    return {"AWS": arns[0] if len(arns) == 1 else arns}


def key_policy(admin_arns, grants):
    """A key policy: administrators manage, each grant uses; nobody else (no account-root ``kms:*``)."""
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
            "Principal": _principals(grant.principal_arns),
            "Action": list(grant.actions),
            "Resource": "*",
        }
        if grant.condition:
            statement["Condition"] = grant.condition
        statements.append(statement)
    return {"Version": POLICY_VERSION, "Statement": statements}


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


def backup_bucket_policy(bucket_arn, backup_key_arn):
    """Deny anything but TLS, and any upload not encrypted with the backup key."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, "%s/*" % bucket_arn],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
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
