"""The Kubernetes cluster the platform runs on, with Kubernetes Secrets envelope-encrypted by KMS.

Three modes (stack config ``clusterMode``):

- ``create``: a new EKS cluster with ``encryption_config`` (the secrets key, resources ``secrets``), its
  IAM OIDC provider (for IRSA), a managed node group across the given subnets and the EBS CSI add-on.
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
from heracles_pulumi.policies import EKS_CREATOR_ACTIONS, EKS_SECRETS_ACTIONS, KeyGrant, service_trust_policy, to_json

CLUSTER_MODES = ("create", "adopt", "self-managed")
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


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
            protect=args.protect, tags=args.tags), opts=child)

        if args.mode == "self-managed":
            self.encryption_configuration = render_encryption_configuration(f"{args.name}-kms")
            self.oidc = self._given_oidc(args)
            provider_kubeconfig = pulumi.Output.secret(args.kubeconfig) if args.kubeconfig is not None else None
        else:
            self.cluster = self._eks_cluster(name, args, child)
            if args.mode == "create":
                self.oidc = self._create_oidc(name, args, child)
                self._create_nodes(name, args, child)
            else:
                self.oidc = self._given_oidc(args)
            provider_kubeconfig = pulumi.Output.secret(pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data).apply(
                    lambda values: eks_kubeconfig(values[0], values[1], values[2], args.region)))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=provider_kubeconfig, opts=child)
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
        opts = pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[self.secrets_key],
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
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            deletion_protection=args.protect,
            tags=args.tags,
            opts=opts)

    def _create_oidc(self, name, args, child):
        issuer = self.cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], tags=args.tags, opts=child)
        return OidcProvider(arn=provider.arn, issuer=issuer)

    def _create_nodes(self, name, args, child):
        node_role = aws.iam.Role(
            f"{name}-node-role", name=f"{args.name}-nodes",
            assume_role_policy=to_json(service_trust_policy("ec2.amazonaws.com")), tags=args.tags, opts=child)
        attachments = [aws.iam.RolePolicyAttachment(
            f"{name}-node-{policy}", role=node_role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}", opts=child) for policy in NODE_POLICIES]
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_group_name=f"{args.name}-system",
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            instance_types=args.node_instance_types or None,
            scaling_config={"desired_size": args.node_count, "min_size": args.node_count,
                            "max_size": args.node_count + 1},
            update_config={"max_unavailable": 1},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))
        ebs_role = IrsaRole(f"{name}-ebs-csi", IrsaRoleArgs(
            role_name=f"{args.name}-ebs-csi", oidc=self.oidc, namespace="kube-system",
            service_account="ebs-csi-controller-sa", tags=args.tags), opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy", role=ebs_role.role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy", opts=child)
        aws.eks.Addon(
            f"{name}-ebs-csi-addon", cluster_name=self.cluster.name, addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group]))
