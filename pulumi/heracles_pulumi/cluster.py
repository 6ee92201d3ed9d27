"""The Kubernetes cluster the platform runs on, with Kubernetes Secrets envelope-encrypted by KMS.

Three modes (stack config ``clusterMode``):

- ``create``: a new EKS cluster with ``encryption_config`` (the secrets key, resources ``secrets``), its
  IAM OIDC provider (for IRSA), a managed node group across the given subnets and the EBS CSI add-on.
  Hardened as terraform-aws-eks does by default: a launch template with IMDSv2 required (hop limit 1, so pods
  cannot reach the node's credentials) and an encrypted root volume; the managed add-ons vpc-cni, kube-proxy,
  coredns and aws-ebs-csi-driver with conflicts resolved in favour of the declared state; every control-plane
  log type into a pre-created log group with a retention (and, with ``log_kms``, its own KMS key); access entries
  (authentication mode API) for the deployer (cluster admin) and the operators (read-only, see ``OPERATOR_ACCESS``).
- ``adopt``: an existing EKS cluster imported into the stack (``import_``), declared with the same
  ``encryption_config``; the OIDC provider already exists and is given by ARN and issuer. Pulumi imports
  only a resource whose declared inputs match the live one, so the cluster must already use this stack's key:
  ``pulumi up --target <URN of the secrets key>``, then ``aws eks associate-encryption-config`` with its
  ARN, then a full ``pulumi up``.
- ``self-managed``: no EKS; the stack renders a kube-apiserver ``EncryptionConfiguration`` (KMS v2) as
  the output ``encryptionConfiguration`` and grants the KMS plugin's role the key.
"""

import json
from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from heracles_pulumi.encryption import eks_encryption_config, render_encryption_configuration
from heracles_pulumi.iam import IrsaRole, IrsaRoleArgs, OidcProvider
from heracles_pulumi.kms import KmsKey, KmsKeyArgs
from heracles_pulumi.policies import (EKS_CREATOR_ACTIONS, EKS_SECRETS_ACTIONS, LOGS_KMS_ACTIONS, KeyGrant,
                                      log_group_arn, logs_key_condition, service_trust_policy, to_json)

CLUSTER_MODES = ("create", "adopt", "self-managed")
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# IMDSv2 only; one hop, so a pod (one hop further) cannot fetch the node role's credentials. Everything in this platform
# that calls AWS uses IRSA; the EBS CSI node plugin falls back to the Kubernetes API for its metadata.
NODE_METADATA_OPTIONS = {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1,
                         "instance_metadata_tags": "disabled"}
NODE_ROOT_DEVICE = "/dev/xvda"  # the root device of the EKS-optimized Amazon Linux 2023 AMIs (the default AMI type)
# Managed add-ons: vpc-cni and kube-proxy before the nodes (a node needs its CNI to become Ready), coredns and the EBS
# CSI driver after them (they run as pods). OVERWRITE: the declared add-on configuration wins over edits in the cluster.
ADDONS_BEFORE_NODES = ("vpc-cni", "kube-proxy")
ADDONS_AFTER_NODES = ("coredns", "aws-ebs-csi-driver")
ADDON_CONFLICT_RESOLUTION = "OVERWRITE"
# EKS access policies (arn:<partition>:eks::aws:cluster-access-policy/<name>).
# The deployer runs pulumi up: it creates namespaces, CRDs, cluster roles, the PriorityClass and Helm releases
# cluster-wide, which only the cluster admin policy allows.
DEPLOYER_ACCESS = "AmazonEKSClusterAdminPolicy"
# Operators diagnose (the ESO modules list ExternalSecrets and their events in every app namespace, the runbooks
# read pods, StatefulSets and Vault's objects). AmazonEKSViewPolicy mirrors the built-in `view` role, which covers no
# custom resource, so it cannot read an ExternalSecret; AmazonEKSAdminViewPolicy reads every resource. It can read
# Kubernetes Secrets too: the operator roles already decrypt Vault's init material (root token, recovery keys), so
# this adds no trust they do not hold. Writes (force-sync annotations, restarts) go through Pulumi or through
# Kubernetes RBAC bound to the entries' group (OPERATOR_GROUP), never through a broad access policy.
OPERATOR_ACCESS = "AmazonEKSAdminViewPolicy"
OPERATOR_GROUP = "heracles:operators"


@dataclass
class ClusterArgs:
    mode: str
    name: str
    region: str
    partition: str
    kms_admin_arns: List[str]
    deployer_arn: str
    kms_deletion_window_days: int
    kms_rotation_period_days: int
    protect: bool
    version: str = ""
    subnet_ids: List[str] = field(default_factory=list)
    existing_role_arn: str = ""
    node_instance_types: List[str] = field(default_factory=list)
    node_count: int = 3
    public_access_cidrs: List[str] = field(default_factory=list)
    oidc_provider_arn: str = ""
    oidc_issuer: str = ""
    kms_plugin_role_arns: List[str] = field(default_factory=list)
    kubeconfig: Optional[pulumi.Input[str]] = None
    tags: Optional[dict] = None
    # Hardening (issue 14). Safe defaults: nothing here replaces a running cluster or node group by itself.
    account_id: str = ""  # for the log group's ARN in the log key's policy; default: the deployer role's account
    operator_role_arns: List[str] = field(default_factory=list)  # read-only access entries (create mode)
    # False: an explicit access entry makes the deployer cluster admin (auditable, terraform-aws-eks's choice).
    # True: EKS bootstraps that entry for whoever creates the cluster. The flag is create-only in EKS: changing it
    # on a running cluster REPLACES the cluster, so it stays True for stacks created before this field existed.
    bootstrap_creator_admin: bool = True
    node_disk_size_gib: int = 50
    log_retention_days: int = 90
    log_kms: bool = False  # a KMS key of its own for the control-plane log group
    addon_versions: dict = field(default_factory=dict)  # {addon name: version}; absent = EKS's default at creation
    kms_account_root_arn: str = ""  # KmsKeyArgs.account_root_arn of every key this component creates


def eks_kubeconfig(cluster_name, endpoint, ca_data, region):
    """A kubeconfig that gets a token from ``aws eks get-token`` (no long-lived credential inside)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        }}}],
    }, sort_keys=True)


class Cluster(pulumi.ComponentResource):
    """``heracles:eks:Cluster`` -- the secrets KMS key, the cluster (or its EncryptionConfiguration), OIDC, provider."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:eks:Cluster", name, None, opts)
        if args.mode not in CLUSTER_MODES:
            raise ValueError("clusterMode must be one of %s, got %r" % (", ".join(CLUSTER_MODES), args.mode))
        child = pulumi.ResourceOptions(parent=self)
        self.encryption_configuration = None
        self.cluster = None
        self.log_group = self.log_key = None
        self.access, self.addons = [], {}

        if args.mode == "create":
            self.cluster_role = aws.iam.Role(
                f"{name}-cluster-role", name=f"{args.name}-cluster",
                assume_role_policy=to_json(service_trust_policy("eks.amazonaws.com")), tags=args.tags, opts=child)
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-policy", role=self.cluster_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/AmazonEKSClusterPolicy", opts=child)
            encrypting_principals = [self.cluster_role.arn]
        elif args.mode == "adopt":
            if not args.existing_role_arn:
                raise ValueError("clusterMode adopt needs clusterRoleArn (the existing cluster's IAM role)")
            encrypting_principals = [args.existing_role_arn]
        else:
            if not args.kms_plugin_role_arns:
                raise ValueError("clusterMode self-managed needs kmsPluginRoleArns (the role of the KMS plugin)")
            encrypting_principals = list(args.kms_plugin_role_arns)

        grants = [KeyGrant("KubernetesSecretsEnvelopeEncryption", encrypting_principals, EKS_SECRETS_ACTIONS)]
        if args.mode != "self-managed":
            grants.append(KeyGrant("LetEksCreateItsGrant", [args.deployer_arn], EKS_CREATOR_ACTIONS,
                                   {"Bool": {"kms:GrantIsForAWSResource": "true"}}))
        self.secrets_key = KmsKey(f"{name}-secrets", KmsKeyArgs(
            alias=f"{args.name}-k8s-secrets",
            description=f"Envelope encryption of Kubernetes Secrets in {args.name}",
            admin_arns=args.kms_admin_arns, grants=grants,
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn), opts=child)

        if args.mode == "self-managed":
            self.encryption_configuration = render_encryption_configuration(f"{args.name}-kms")
            self.oidc = self._given_oidc(args)
            provider_kubeconfig = pulumi.Output.secret(args.kubeconfig) if args.kubeconfig is not None else None
        else:
            self.log_group = self._log_group(name, args, child) if args.mode == "create" else None
            self.cluster = self._eks_cluster(name, args, child)
            if args.mode == "create":
                self.oidc = self._create_oidc(name, args, child)
                self._create_access_entries(name, args)
                self._create_nodes(name, args, child)
            else:
                self.oidc = self._given_oidc(args)
            provider_kubeconfig = pulumi.Output.secret(pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data).apply(
                    lambda values: eks_kubeconfig(values[0], values[1], values[2], args.region)))
        # Every Kubernetes object and release waits for nodes and the networking/DNS add-ons: a release that waits
        # for readiness must not start on a cluster without a node.
        ready = ([self.node_group] if getattr(self, "node_group", None) is not None else []) + list(self.addons.values())
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=provider_kubeconfig,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=ready))
        self.secrets_key_arn = self.secrets_key.arn
        self.register_outputs({
            "secretsKeyArn": self.secrets_key_arn,
            "oidcProviderArn": self.oidc.arn,
            "encryptionConfiguration": self.encryption_configuration,
        })

    @staticmethod
    def _given_oidc(args):
        if not args.oidc_provider_arn or not args.oidc_issuer:
            raise ValueError("clusterMode %s needs oidcProviderArn and oidcIssuer (IRSA trusts that provider)" % args.mode)
        return OidcProvider(arn=args.oidc_provider_arn, issuer=args.oidc_issuer)

    def _eks_cluster(self, name, args, child):
        if not args.subnet_ids:
            raise ValueError("clusterMode %s needs subnetIds" % args.mode)
        role_arn = self.cluster_role.arn if args.mode == "create" else args.existing_role_arn
        after = [self.secrets_key] + ([self.log_group] if self.log_group is not None else [])
        opts = pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=after,
                                      import_=args.name if args.mode == "adopt" else None)
        return aws.eks.Cluster(
            f"{name}-eks",
            name=args.name,
            role_arn=role_arn,
            version=args.version or None,
            vpc_config={
                "subnet_ids": args.subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": bool(args.public_access_cidrs),
                "public_access_cidrs": args.public_access_cidrs or None,
            },
            encryption_config=self.secrets_key.arn.apply(eks_encryption_config),
            access_config={"authentication_mode": "API",
                           "bootstrap_cluster_creator_admin_permissions": args.bootstrap_creator_admin},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            deletion_protection=args.protect,
            tags=args.tags,
            opts=opts)

    def _create_oidc(self, name, args, child):
        issuer = self.cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], tags=args.tags, opts=child)
        return OidcProvider(arn=provider.arn, issuer=issuer)

    def _account_id(self, args):
        if args.account_id:
            return args.account_id
        parts = args.deployer_arn.split(":")
        if len(parts) < 6 or parts[2] != "iam" or not parts[4].isdigit():
            raise ValueError("account_id is empty and deployerRoleArn %r names no account" % args.deployer_arn)
        return parts[4]

    def _log_group(self, name, args, child):
        """``/aws/eks/<cluster>/cluster`` before the cluster exists, so EKS writes into it (not into a group it makes
        without retention); with ``log_kms``, encrypted by a key only CloudWatch Logs may use, for this group only."""
        if args.log_retention_days < 1:
            raise ValueError("log_retention_days must be at least 1, got %d" % args.log_retention_days)
        group_name = "/aws/eks/%s/cluster" % args.name
        if args.log_kms:
            group_arn = log_group_arn(args.partition, args.region, self._account_id(args), group_name)
            self.log_key = KmsKey(f"{name}-logs", KmsKeyArgs(
                alias=f"{args.name}-eks-logs",
                description=f"EKS control-plane logs of {args.name}",
                admin_arns=args.kms_admin_arns,
                grants=[KeyGrant("CloudWatchLogsEncryptsControlPlaneLogs", ["logs.%s.amazonaws.com" % args.region],
                                 LOGS_KMS_ACTIONS, logs_key_condition(group_arn), principal_type="Service")],
                deletion_window_days=args.kms_deletion_window_days,
                rotation_period_days=args.kms_rotation_period_days,
                protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn), opts=child)
        return aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs", name=group_name, retention_in_days=args.log_retention_days,
            kms_key_id=self.log_key.arn if self.log_key is not None else None, tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))

    def _access(self, name, suffix, args, principal_arn, policy, groups=None):
        entry = aws.eks.AccessEntry(
            f"{name}-access-{suffix}", cluster_name=self.cluster.name, principal_arn=principal_arn, type="STANDARD",
            kubernetes_groups=groups, tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
        return aws.eks.AccessPolicyAssociation(
            f"{name}-access-{suffix}-policy", cluster_name=self.cluster.name, principal_arn=principal_arn,
            policy_arn=f"arn:{args.partition}:eks::aws:cluster-access-policy/{policy}",
            access_scope={"type": "cluster"}, opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]))

    def _create_access_entries(self, name, args):
        """Who may use the Kubernetes API, as AWS resources (authentication mode API: no aws-auth ConfigMap)."""
        if not args.bootstrap_creator_admin:
            self.access.append(self._access(name, "deployer", args, args.deployer_arn, DEPLOYER_ACCESS))
        for index, arn in enumerate(sorted(set(args.operator_role_arns))):
            if arn == args.deployer_arn:
                continue  # one entry per principal: the deployer's covers it
            self.access.append(self._access(name, "operator-%d" % index, args, arn, OPERATOR_ACCESS,
                                            groups=[OPERATOR_GROUP]))

    def _addon(self, name, args, addon, depends_on, role_arn=None):
        return aws.eks.Addon(
            f"{name}-{addon}-addon" if addon != "aws-ebs-csi-driver" else f"{name}-ebs-csi-addon",
            cluster_name=self.cluster.name, addon_name=addon, addon_version=args.addon_versions.get(addon),
            resolve_conflicts_on_create=ADDON_CONFLICT_RESOLUTION,
            resolve_conflicts_on_update=ADDON_CONFLICT_RESOLUTION,
            service_account_role_arn=role_arn, tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))

    def _launch_template(self, name, args):
        if args.node_disk_size_gib < 20:
            raise ValueError("node_disk_size_gib must be at least 20, got %d" % args.node_disk_size_gib)
        return aws.ec2.LaunchTemplate(
            f"{name}-nodes-template",
            name=f"{args.name}-nodes",
            description=f"{args.name} system nodes: IMDSv2 only, encrypted root volume",
            metadata_options=dict(NODE_METADATA_OPTIONS),
            block_device_mappings=[{"device_name": NODE_ROOT_DEVICE, "ebs": {
                "volume_size": args.node_disk_size_gib, "volume_type": "gp3", "encrypted": "true",
                "delete_on_termination": "true"}}],
            tag_specifications=[{"resource_type": kind, "tags": args.tags} for kind in ("instance", "volume")]
            if args.tags else None,
            update_default_version=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self))

    def _create_nodes(self, name, args, child):
        node_role = aws.iam.Role(
            f"{name}-node-role", name=f"{args.name}-nodes",
            assume_role_policy=to_json(service_trust_policy("ec2.amazonaws.com")), tags=args.tags, opts=child)
        attachments = [aws.iam.RolePolicyAttachment(
            f"{name}-node-{policy}", role=node_role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}", opts=child) for policy in NODE_POLICIES]
        self.addons = {addon: self._addon(name, args, addon, []) for addon in ADDONS_BEFORE_NODES}
        self.launch_template = self._launch_template(name, args)
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            # A prefix, not a name: a change that replaces the group (a new launch template) creates the new group
            # before the old one drains, instead of failing on the taken name.
            node_group_name_prefix=f"{args.name}-system-",
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            instance_types=args.node_instance_types or None,
            launch_template={"id": self.launch_template.id,
                             "version": self.launch_template.latest_version.apply(str)},
            scaling_config={"desired_size": args.node_count, "min_size": args.node_count,
                            "max_size": args.node_count + 1},
            update_config={"max_unavailable": 1},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments + list(self.addons.values())))
        ebs_role = IrsaRole(f"{name}-ebs-csi", IrsaRoleArgs(
            role_name=f"{args.name}-ebs-csi", oidc=self.oidc, namespace="kube-system",
            service_account="ebs-csi-controller-sa", tags=args.tags), opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy", role=ebs_role.role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy", opts=child)
        for addon in ADDONS_AFTER_NODES:
            self.addons[addon] = self._addon(name, args, addon, [self.node_group],
                                             role_arn=ebs_role.arn if addon == "aws-ebs-csi-driver" else None)
