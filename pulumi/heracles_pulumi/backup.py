"""Raft snapshot backups: a KMS key, an S3 bucket that only accepts it, an IRSA role, a CronJob.

With ``object_lock_days`` the bucket keeps every snapshot version for that many days in S3 Object Lock governance
mode (nobody deletes or overwrites it without ``s3:BypassGovernanceRetention``, which no role of this stack has).
With ``replica_region`` S3 replicates the snapshots into a bucket of that region under a key of that region (the
replica bucket, its key and its settings are created there through the AWS provider's per-resource ``region``).
"""

from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from heracles_pulumi.delivery import BACKUP_POD_LABELS
from heracles_pulumi.iam import IrsaRole, IrsaRoleArgs, OidcProvider
from heracles_pulumi.kms import KmsKey, KmsKeyArgs
from heracles_pulumi.policies import (BACKUP_KMS_ACTIONS, BACKUP_RESTORE_KMS_ACTIONS, REPLICATION_REPLICA_KMS_ACTIONS,
                                      REPLICATION_SOURCE_KMS_ACTIONS, KeyGrant, backup_bucket_policy,
                                      backup_write_policy, replica_bucket_policy, replication_policy,
                                      s3_bucket_key_condition, service_trust_policy, to_json, via_service)
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
    # Hardening (issue 14): the deployment facts' backup.object_lock_days (0 = off) and backup.replica_region ("" = no
    # replica), the replica bucket's name (default <bucket>-<replica region>) and the account root of the keys'
    # policies.
    object_lock_days: int = 0
    replica_region: str = ""
    replica_bucket_name: str = ""
    kms_account_root_arn: str = ""


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
    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
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
                    "resources": resources,
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
                    "resources": resources,
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
        if not 0 <= args.object_lock_days <= args.retention_days:
            raise ValueError("object_lock_days must be between 0 and retention_days (%d), got %d: a locked snapshot "
                             "outliving its expiry cannot be deleted" % (args.retention_days, args.object_lock_days))
        if args.replica_region and args.replica_region == args.region:
            raise ValueError("replica_region must differ from the bucket's region %s" % args.region)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            role_name=args.role_name, oidc=args.oidc, namespace=args.namespace, service_account=args.service_account,
            description=f"{args.cluster_name}: write raft snapshots", tags=args.tags), opts=child)
        replication_grants = []
        self.replication_role = None
        if args.replica_region:
            # S3 assumes this role to replicate; the backup key lets it decrypt through S3 for this bucket only.
            self.replication_role = aws.iam.Role(
                f"{name}-replication-role", name=f"{args.role_name}-replication",
                description=f"{args.cluster_name}: S3 replication of raft snapshots to {args.replica_region}",
                assume_role_policy=to_json(service_trust_policy("s3.amazonaws.com")), tags=args.tags, opts=child)
            replication_grants = [KeyGrant(
                "ReplicationDecryptsThroughS3", [self.replication_role.arn], REPLICATION_SOURCE_KMS_ACTIONS,
                s3_bucket_key_condition(args.region, "arn:%s:s3:::%s" % (args.partition, args.bucket_name)))]
        self.key = KmsKey(f"{name}-kms", KmsKeyArgs(
            alias=args.key_alias or f"{args.cluster_name}-backup",
            description=f"Raft snapshots of {args.cluster_name}",
            admin_arns=args.kms_admin_arns,
            grants=[KeyGrant("BackupJobEncryptsThroughS3", [self.role.arn], BACKUP_KMS_ACTIONS,
                             via_service("s3", args.region)),
                    KeyGrant("OperatorsRestoreThroughS3", list(args.restore_role_arns), BACKUP_RESTORE_KMS_ACTIONS,
                             via_service("s3", args.region))] + replication_grants,
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn), opts=child)

        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name, force_destroy=not args.protect,
                                    tags=args.tags, opts=protected)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=self.bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
        self.object_lock = self._object_lock(name, args, self.bucket, self.versioning)
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

        self.replica_bucket = self.replica_key = self.replication = None
        if args.replica_region:
            self._replicate(name, args)

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
            "replicaBucket": self.replica_bucket.bucket if self.replica_bucket is not None else None,
        })

    def _object_lock(self, name, args, bucket, versioning, region=None):
        """Governance-mode default retention on every new object version.

        Object Lock is enabled on the versioned bucket by this resource (PutObjectLockConfiguration; S3 allows it on
        existing buckets since 2023), not by the bucket's create-only objectLockEnabled, so turning it on does not
        replace a running bucket. It cannot be turned off again; retention days can be changed.
        """
        if not args.object_lock_days:
            return None
        return aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock", bucket=bucket.id, object_lock_enabled="Enabled", region=region,
            rule={"default_retention": {"mode": "GOVERNANCE", "days": args.object_lock_days}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))

    def _replicate(self, name, args):
        """A replica bucket and key in ``replica_region``, and S3 replication of the snapshots into it."""
        region = args.replica_region
        replica_name = args.replica_bucket_name or "%s-%s" % (args.bucket_name, region)
        if len(replica_name) > 63:
            raise ValueError("replica bucket name %r is longer than 63 characters: set replica_bucket_name"
                             % replica_name)
        replica_arn = "arn:%s:s3:::%s" % (args.partition, replica_name)
        source_arn = "arn:%s:s3:::%s" % (args.partition, args.bucket_name)
        child = pulumi.ResourceOptions(parent=self)
        self.replica_key = KmsKey(f"{name}-replica-kms", KmsKeyArgs(
            alias=f"{args.key_alias or args.cluster_name + '-backup'}-replica",
            description=f"Raft snapshot replicas of {args.cluster_name} in {region}",
            admin_arns=args.kms_admin_arns,
            grants=[KeyGrant("ReplicationEncryptsThroughS3", [self.replication_role.arn],
                             REPLICATION_REPLICA_KMS_ACTIONS, s3_bucket_key_condition(region, replica_arn)),
                    KeyGrant("OperatorsRestoreReplicasThroughS3", list(args.restore_role_arns),
                             BACKUP_RESTORE_KMS_ACTIONS, via_service("s3", region))],
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn, region=region),
            opts=child)
        self.replica_bucket = aws.s3.Bucket(f"{name}-replica-bucket", bucket=replica_name, region=region,
                                            force_destroy=not args.protect, tags=args.tags,
                                            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        bucket_id = self.replica_bucket.id
        aws.s3.BucketOwnershipControls(f"{name}-replica-ownership", bucket=bucket_id, region=region,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-replica-public-access", bucket=bucket_id, region=region, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-replica-versioning", bucket=bucket_id, region=region,
            versioning_configuration={"status": "Enabled"}, opts=child)
        self.replica_object_lock = self._object_lock(f"{name}-replica", args, self.replica_bucket, versioning, region)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-replica-encryption", bucket=bucket_id, region=region,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": self.replica_key.arn},
                    "bucket_key_enabled": True}], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-replica-lifecycle", bucket=bucket_id, region=region,
            rules=[{"id": "expire-snapshots", "status": "Enabled", "filter": {"prefix": args.prefix},
                    "expiration": {"days": args.retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_retention_days}}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        aws.s3.BucketPolicy(
            f"{name}-replica-bucket-policy", bucket=bucket_id, region=region,
            policy=to_json(replica_bucket_policy(replica_arn)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]))
        self.replication_policy = aws.iam.RolePolicy(
            f"{name}-replication-policy", name="replicate", role=self.replication_role.name,
            policy=pulumi.Output.all(self.key.arn, self.replica_key.arn).apply(lambda keys: to_json(replication_policy(
                source_arn, replica_arn, args.prefix, keys[0], keys[1], args.region, region,
                object_lock=bool(args.object_lock_days)))), opts=child)
        self.replication = aws.s3.BucketReplicationConfig(
            f"{name}-replication", bucket=self.bucket.id, role=self.replication_role.arn,
            rules=[{
                "id": "replicate-snapshots",
                "status": "Enabled",
                "priority": 1,
                "filter": {"prefix": args.prefix},
                "delete_marker_replication": {"status": "Disabled"},
                "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
                "destination": {"bucket": replica_arn,
                                "encryption_configuration": {"replica_kms_key_id": self.replica_key.arn}},
            }],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                self.versioning, versioning, self.replication_policy]))
