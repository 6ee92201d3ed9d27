"""heracles-platform: KMS, IAM, EKS Secrets encryption, Vault HA, ESO and backups for one environment.

Reads the stack config and the declared Vault data (vault/), builds the components, exports what the
Ansible bootstrap and operators need. Nothing here is environment-specific: that is in Pulumi.<stack>.yaml.
"""

import os
import sys

import pulumi

PULUMI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if PULUMI_DIR not in sys.path:
    sys.path.insert(0, PULUMI_DIR)  # the shared package heracles_pulumi

# pylint: disable=wrong-import-position
from heracles_pulumi import stack, vaultdata  # noqa: E402
from heracles_pulumi.backup import BackupArgs, VaultBackup  # noqa: E402
from heracles_pulumi.cluster import Cluster, ClusterArgs  # noqa: E402
from heracles_pulumi.endpoint import EndpointArgs, InternalEndpoint  # noqa: E402
from heracles_pulumi.eso import EsoArgs, ExternalSecretsOperator  # noqa: E402
from heracles_pulumi.init_store import InitStore, InitStoreArgs  # noqa: E402
from heracles_pulumi.prerequisites import ClusterPrerequisites, PrerequisitesArgs  # noqa: E402
from heracles_pulumi.server_config import get_flavour  # noqa: E402
from heracles_pulumi.settings import PlatformSettings, read_settings  # noqa: E402
from heracles_pulumi.vault_release import VaultCluster, VaultClusterArgs  # noqa: E402
from heracles_pulumi.workload_delivery import WorkloadDelivery, WorkloadDeliveryArgs  # noqa: E402

# Vault runs in the cluster: its Kubernetes auth reviews tokens against the in-cluster API with its own account.
IN_CLUSTER_KUBERNETES_HOST = "https://kubernetes.default.svc:443"

# --- config ----------------------------------------------------------------------------------------
settings = read_settings(PlatformSettings, pulumi.Config())
region = pulumi.Config("aws").require("region")
desired, workloads = stack.declared(settings)
facts = stack.deployment(settings, region)
backup_auth, backup_role = vaultdata.backup_vault_role(desired, settings.environment, settings.vault_namespace)
name = settings.cluster_name
kms = dict(kms_admin_arns=settings.kms_admin_role_arns, kms_deletion_window_days=settings.kms_deletion_window_days,
           kms_rotation_period_days=settings.kms_rotation_period_days,
           # every key policy keeps the account able to recover the key (never to use it): no lock-out
           kms_account_root_arn="arn:%s:iam::%s:root" % (settings.aws_partition, settings.aws_account_id))
flavour = get_flavour(settings.vault_flavour)

# --- components ------------------------------------------------------------------------------------
cluster = Cluster(name, ClusterArgs(
    mode=settings.cluster_mode, name=name, region=region, partition=settings.aws_partition,
    deployer_arn=settings.deployer_role_arn, protect=settings.deletion_protection,
    version=settings.cluster_version, subnet_ids=settings.subnet_ids, existing_role_arn=settings.cluster_role_arn,
    node_instance_types=settings.node_instance_types, node_count=settings.node_count,
    public_access_cidrs=settings.public_access_cidrs, oidc_provider_arn=settings.oidc_provider_arn,
    oidc_issuer=settings.oidc_issuer, kms_plugin_role_arns=settings.kms_plugin_role_arns,
    account_id=settings.aws_account_id, operator_role_arns=settings.operator_role_arns,
    log_kms=settings.control_plane_log_kms, log_retention_days=settings.control_plane_log_retention_days,
    tags=settings.tags, **kms))

init_store = InitStore(f"{name}-init", InitStoreArgs(
    secret_name=facts["init_store"]["secret_name"], key_alias=facts["init_store"]["kms_alias"], region=region,
    operator_role_arns=settings.operator_role_arns, recovery_window_days=settings.vault_init_recovery_window_days,
    protect=settings.deletion_protection, tags=settings.tags, **kms))

# cert-manager and Vault's CA issuer, the CA in the app namespaces, gp3 storage, the Prometheus CRDs (checked).
prerequisites = ClusterPrerequisites(f"{name}-prerequisites", PrerequisitesArgs(
    environment=settings.environment, cluster_name=name, issuer_name=settings.vault_tls_issuer,
    issuer_mode=settings.vault_tls_issuer_mode, issuer_kind=settings.vault_tls_issuer_kind,
    vault_namespace=settings.vault_namespace, cert_manager_version=settings.cert_manager_chart_version,
    trust_manager_version=settings.trust_manager_chart_version, distribute_ca=not settings.vault_ca_bundle,
    storage_class=settings.vault_storage_class if settings.cluster_mode != "self-managed" else "",
    monitoring=settings.monitoring), provider=cluster.provider)

server = stack.server_spec(settings, region, desired, external_hostnames=[facts["vault"]["hostname"]])
vault = VaultCluster(f"{name}-vault", VaultClusterArgs(
    server=server, chart_version=settings.vault_chart_version, image_tag=settings.vault_image_tag,
    role_name=f"{name}-vault", oidc=cluster.oidc, tls_issuer_name=settings.vault_tls_issuer,
    tls_issuer_kind=settings.vault_tls_issuer_kind, data_storage_size=settings.vault_data_storage_size,
    audit_storage_size=settings.vault_audit_storage_size, storage_class=settings.vault_storage_class or None,
    service_monitor=settings.monitoring, protect=settings.deletion_protection, tags=settings.tags,
    after=prerequisites.ready, **kms), provider=cluster.provider)

# The internal endpoint operators, playbooks and pulumi/vault use (the deployment facts' vault.address).
endpoint = InternalEndpoint(f"{name}-endpoint", EndpointArgs(
    server=server, hostname=facts["vault"]["hostname"], private_zone_id=settings.private_zone_id,
    client_cidrs=settings.vault_client_cidrs, depends_on=[vault.release]), provider=cluster.provider)

eso = ExternalSecretsOperator(f"{name}-eso", EsoArgs(
    namespace=workloads["eso"]["namespace"], service_account=workloads["eso"]["service_account"],
    chart_version=settings.eso_chart_version, replicas=settings.eso_replicas, service_monitor=settings.monitoring,
    role_name=f"{name}-eso", oidc=cluster.oidc, partition=settings.aws_partition, region=region,
    account_id=settings.aws_account_id, secrets_prefix=settings.eso_secrets_prefix,
    tags=settings.tags), provider=cluster.provider, opts=pulumi.ResourceOptions(depends_on=[vault]))

backup = VaultBackup(f"{name}-backup", BackupArgs(
    cluster_name=name, bucket_name=facts["backup"]["bucket"], prefix=facts["backup"]["prefix"],
    retention_days=facts["backup"]["retention_days"],
    noncurrent_retention_days=facts["backup"]["noncurrent_retention_days"], schedule=facts["backup"]["schedule"],
    key_alias=facts["backup"]["kms_alias"], object_lock_days=facts["backup"]["object_lock_days"],
    replica_region=facts["backup"]["replica_region"],
    namespace=backup_role["bound_service_account_namespaces"][0],
    service_account=backup_role["bound_service_account_names"][0],
    role_name=f"{name}-backup", oidc=cluster.oidc, partition=settings.aws_partition, region=region,
    flavour=settings.vault_flavour,
    vault_image="%s/%s:%s" % (flavour.image_registry, flavour.image_repository, settings.vault_image_tag),
    aws_cli_image=settings.backup_aws_cli_image, vault_address=vault.address, vault_ca_secret=vault.ca_secret,
    vault_auth_mount=backup_auth["path"], vault_auth_role=backup_role["name"],
    vault_audience=backup_role["audience"], restore_role_arns=settings.operator_role_arns,
    protect=settings.deletion_protection, tags=settings.tags, **kms),
    provider=cluster.provider, opts=pulumi.ResourceOptions(depends_on=[vault]))

# Apps' namespaces, SecretStores (each logs in as its app), ExternalSecrets, RBAC, NetworkPolicies, alerts: from vault/.
delivery = WorkloadDelivery(f"{name}-delivery", WorkloadDeliveryArgs(
    objects=stack.delivery_objects(settings, server, workloads),
    after=[vault.namespace, eso.namespace] + prerequisites.ready,
    crd_owners=[eso.release]), provider=cluster.provider)

# --- outputs ---------------------------------------------------------------------------------------
pulumi.export("environment", settings.environment)
pulumi.export("vaultAddress", vault.address)
pulumi.export("vaultRoleArn", vault.role.arn)
pulumi.export("unsealKeyArn", vault.unseal_key.arn)
pulumi.export("secretsKeyArn", cluster.secrets_key_arn)
pulumi.export("encryptionConfiguration", cluster.encryption_configuration)
pulumi.export("initSecretName", init_store.secret.name)
pulumi.export("initKeyAlias", init_store.key.alias_name)
pulumi.export("esoRoleArn", eso.role.arn)
pulumi.export("backupBucket", backup.bucket.bucket)
pulumi.export("backupKeyArn", backup.key.arn)
pulumi.export("backupKeyAlias", backup.key.alias_name)
pulumi.export("backupReplicaBucket", backup.replica_bucket.bucket if backup.replica_bucket is not None else "")
# What pulumi/vault reads through its StackReference, and the inventory through the same deployment facts.
pulumi.export("vaultEndpoint", endpoint.address)
pulumi.export("kubernetesHost", IN_CLUSTER_KUBERNETES_HOST)
pulumi.export("deliveryObjects", sorted(delivery.resources))
