"""Raft snapshot backups: a KMS key, an S3 bucket that only accepts it, an IRSA role, a CronJob."""

from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from heracles_pulumi.delivery import BACKUP_POD_LABELS
from heracles_pulumi.iam import IrsaRole, IrsaRoleArgs, OidcProvider
from heracles_pulumi.kms import KmsKey, KmsKeyArgs
from heracles_pulumi.policies import (BACKUP_KMS_ACTIONS, BACKUP_RESTORE_KMS_ACTIONS, KeyGrant, backup_bucket_policy,
                                      backup_write_policy, to_json, via_service)
from heracles_pulumi.server_config import get_flavour
from heracles_pulumi.stack import backup_cronjob_name

SNAPSHOT_DIR = "/snapshot"
TOKEN_DIR = "/var/run/secrets/heracles"
CA_DIR = "/etc/heracles/vault-ca"


@dataclass
class BackupArgs:
    cluster_name: str
    bucket_name: str
    prefix: str
    retention_days: int
    noncurrent_retention_days: int
    schedule: str
    namespace: str
    service_account: str
    role_name: str
    oidc: OidcProvider
    partition: str
    region: str
    kms_admin_arns: List[str]
    kms_deletion_window_days: int
    kms_rotation_period_days: int
    flavour: str
    vault_image: str
    aws_cli_image: str
    vault_address: str
    vault_ca_secret: str
    vault_auth_mount: str
    vault_auth_role: str
    vault_audience: str
    restore_role_arns: List[str] = field(default_factory=list)
    key_alias: str = ""  # the deployment facts' backup.kms_alias; default <cluster>-backup
    protect: bool = False
    tags: Optional[dict] = None


def snapshot_script(cli, auth_mount, role):
    """Log in with the job's projected token (audience = Vault's), save a snapshot, check it is a real archive."""
    return "\n".join([
        'token="$(%s write -field=token auth/%s/login role=%s jwt=@%s/token)"' % (cli, auth_mount, role, TOKEN_DIR),
        '%sTOKEN="$token" %s operator raft snapshot save %s/raft.snap' % (
            "BAO_" if cli == "bao" else "VAULT_", cli, SNAPSHOT_DIR),
        "tar -tzf %s/raft.snap | grep -q '^state.bin$'" % SNAPSHOT_DIR,
        'echo "snapshot: $(wc -c < %s/raft.snap) bytes"' % SNAPSHOT_DIR,
    ])


def ship_script():
    """One PUT (no multipart, so no kms:Decrypt is needed), SSE-KMS with the backup key, under the prefix."""
    return "\n".join([
        'name="${BACKUP_PREFIX}$(date -u +%Y/%m/%d/%H%M%SZ)-raft.snap"',
        "aws configure set default.s3.multipart_threshold 5GB",
        'aws s3 cp "%s/raft.snap" "s3://${BACKUP_BUCKET}/${name}" --sse aws:kms --sse-kms-key-id "${BACKUP_KMS_KEY_ARN}"'
        ' --only-show-errors' % SNAPSHOT_DIR,
        'echo "shipped s3://${BACKUP_BUCKET}/${name}"',
    ])


def cronjob_spec(args, key_arn, bucket):
    flavour = get_flavour(args.flavour)
    prefix = flavour.env_prefix
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    return {
        "schedule": args.schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 900,
            "template": {"metadata": {"labels": dict(BACKUP_POD_LABELS)}, "spec": {
                "serviceAccountName": args.service_account,
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": True, "runAsUser": 100, "runAsGroup": 1000, "fsGroup": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [
                    {"name": "snapshot", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                    {"name": "vault-ca", "secret": {"secretName": args.vault_ca_secret,
                                                    "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
                        "audience": args.vault_audience, "expirationSeconds": 600, "path": "token"}}]}},
                ],
                "initContainers": [{
                    "name": "snapshot",
                    "image": args.vault_image,
                    "command": ["/bin/sh", "-ec", snapshot_script(flavour.cli, args.vault_auth_mount, args.vault_auth_role)],
                    "env": [{"name": prefix + "ADDR", "value": args.vault_address},
                            {"name": prefix + "CACERT", "value": "%s/ca.crt" % CA_DIR},
                            {"name": "HOME", "value": "/tmp"}],
                    "securityContext": restricted,
                    "volumeMounts": [{"name": "snapshot", "mountPath": SNAPSHOT_DIR},
                                     {"name": "tmp", "mountPath": "/tmp"},
                                     {"name": "vault-ca", "mountPath": CA_DIR, "readOnly": True},
                                     {"name": "vault-token", "mountPath": TOKEN_DIR, "readOnly": True}],
                }],
                "containers": [{
                    "name": "ship",
                    "image": args.aws_cli_image,
                    "command": ["/bin/sh", "-ec", ship_script()],
                    "env": [{"name": "BACKUP_BUCKET", "value": bucket},
                            {"name": "BACKUP_PREFIX", "value": args.prefix},
                            {"name": "BACKUP_KMS_KEY_ARN", "value": key_arn},
                            {"name": "AWS_REGION", "value": args.region},
                            {"name": "HOME", "value": "/tmp"}],
                    "securityContext": restricted,
                    "volumeMounts": [{"name": "snapshot", "mountPath": SNAPSHOT_DIR, "readOnly": True},
                                     {"name": "tmp", "mountPath": "/tmp"}],
                }],
            }},
        }},
    }


class VaultBackup(pulumi.ComponentResource):
    """``heracles:backup:VaultBackup`` -- snapshots every ``schedule`` into an encrypted, versioned, private bucket."""

    def __init__(self, name: str, args: BackupArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:backup:VaultBackup", name, None, opts)
        if not args.prefix or not args.prefix.endswith("/") or args.prefix.startswith("/"):
            raise ValueError("backupPrefix must be a relative folder ending in '/', got %r" % args.prefix)
        if args.noncurrent_retention_days < 1 or args.retention_days < 1:
            raise ValueError("backup retention must be at least one day")
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            role_name=args.role_name, oidc=args.oidc, namespace=args.namespace, service_account=args.service_account,
            description=f"{args.cluster_name}: write raft snapshots", tags=args.tags), opts=child)
        self.key = KmsKey(f"{name}-kms", KmsKeyArgs(
            alias=args.key_alias or f"{args.cluster_name}-backup",
            description=f"Raft snapshots of {args.cluster_name}",
            admin_arns=args.kms_admin_arns,
            grants=[KeyGrant("BackupJobEncryptsThroughS3", [self.role.arn], BACKUP_KMS_ACTIONS,
                             via_service("s3", args.region)),
                    KeyGrant("OperatorsRestoreThroughS3", list(args.restore_role_arns), BACKUP_RESTORE_KMS_ACTIONS,
                             via_service("s3", args.region))],
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags), opts=child)

        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name, force_destroy=not args.protect,
                                    tags=args.tags, opts=protected)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=self.bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": self.key.arn},
                    "bucket_key_enabled": True}], opts=child)
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=[{
                "id": "expire-snapshots",
                "status": "Enabled",
                "filter": {"prefix": args.prefix},
                "expiration": {"days": args.retention_days},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_retention_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }], opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy", bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, self.key.arn).apply(
                lambda values: to_json(backup_bucket_policy(values[0], values[1]))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]))
        self.write_policy = self.role.attach_inline_policy("write", pulumi.Output.all(self.bucket.arn, self.key.arn).apply(
            lambda values: to_json(backup_write_policy(values[0], args.prefix, values[1]))), parent=self)

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": args.service_account, "namespace": args.namespace,
                                    "annotations": self.role.service_account_annotations},
            automount_service_account_token=False, opts=k8s_opts)
        self.cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob", metadata={"name": backup_cronjob_name(args.cluster_name), "namespace": args.namespace},
            spec=pulumi.Output.all(self.key.arn, self.bucket.bucket).apply(
                lambda values: cronjob_spec(args, values[0], values[1])),
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[self.service_account, self.write_policy]))
        self.register_outputs({
            "bucket": self.bucket.bucket,
            "keyArn": self.key.arn,
            "roleArn": self.role.arn,
        })
