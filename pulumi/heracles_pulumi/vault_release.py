"""Vault (or OpenBao) in HA: the unseal key, the IRSA role that may use it, the TLS certificate, the Helm release."""

import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_kubernetes as k8s

from heracles_pulumi.iam import IRSA_ANNOTATION, IrsaRole, IrsaRoleArgs, OidcProvider
from heracles_pulumi.kms import KmsKey, KmsKeyArgs
from heracles_pulumi.policies import VAULT_UNSEAL_ACTIONS, KeyGrant, to_json, vault_unseal_policy
from heracles_pulumi.server_config import (PRIORITY_CLASS, PRIORITY_CLASS_VALUE, SERVER_RESOURCES, ReleaseSpec,
                                           ServerSpec, chart_values, priority_class_manifest, render_server_hcl)
from heracles_pulumi.tls_reload import DEFAULT_INTERVAL_SECONDS

CERT_MANAGER_API = "cert-manager.io/v1"


@dataclass
class VaultClusterArgs:
    """``server`` carries everything but the unseal key ARN, which this component creates."""

    server: ServerSpec
    chart_version: str
    image_tag: str
    role_name: str
    oidc: OidcProvider
    kms_admin_arns: List[str]
    kms_deletion_window_days: int
    kms_rotation_period_days: int
    tls_issuer_name: str
    tls_issuer_kind: str = "ClusterIssuer"
    data_storage_size: str = "10Gi"
    audit_storage_size: str = "10Gi"
    storage_class: Optional[str] = None
    service_monitor: bool = False
    protect: bool = False
    tags: Optional[dict] = None
    # Hardening (issue 14): requests/limits of the server container ({"requests": {...}, "limits": {...}}; None:
    # server_config.SERVER_RESOURCES), the PriorityClass this component creates and the pods use ("" = none), the
    # TLS-reload sidecar (tls_reload_interval_seconds 0 = off) and the account root of the unseal key's policy.
    server_resources: Optional[dict] = None
    priority_class_name: str = PRIORITY_CLASS
    priority_class_value: int = PRIORITY_CLASS_VALUE
    tls_reload_interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    kms_account_root_arn: str = ""
    # What the certificate and the release wait for (cert-manager, the CA issuer, the StorageClass): a component's own
    # depends_on does not reach its children, so the prerequisites are passed down here.
    after: List[pulumi.Resource] = field(default_factory=list)


def certificate_manifest(server, issuer_name, issuer_kind):
    """A cert-manager Certificate for every name the servers and clients use (``leader_tls_servername`` too)."""
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Certificate",
        "metadata": {"name": server.tls_secret, "namespace": server.namespace},
        "spec": {
            "secretName": server.tls_secret,
            "commonName": server.service_host(),
            "dnsNames": server.certificate_dns_names(),
            "ipAddresses": ["127.0.0.1"],
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
            "issuerRef": {"name": issuer_name, "kind": issuer_kind, "group": "cert-manager.io"},
        },
    }


class VaultCluster(pulumi.ComponentResource):
    """``heracles:vault:Cluster`` -- 3 Raft voters with TLS and awskms auto-unseal through IRSA."""

    def __init__(self, name: str, args: VaultClusterArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:vault:Cluster", name, None, opts)
        server = args.server
        child = pulumi.ResourceOptions(parent=self)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=provider)

        self.role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            role_name=args.role_name, oidc=args.oidc, namespace=server.namespace, service_account=server.release,
            description=f"{server.cluster_name}: awskms auto-unseal", tags=args.tags), opts=child)
        self.unseal_key = KmsKey(f"{name}-unseal", KmsKeyArgs(
            alias=f"{server.cluster_name}-vault-unseal",
            description=f"Vault auto-unseal for {server.cluster_name}",
            admin_arns=args.kms_admin_arns,
            grants=[KeyGrant("VaultAutoUnseal", [self.role.arn], VAULT_UNSEAL_ACTIONS)],
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn), opts=child)
        self.unseal_policy = self.role.attach_inline_policy(
            "unseal", self.unseal_key.arn.apply(lambda arn: to_json(vault_unseal_policy(arn))), parent=self)

        self.priority_class = None
        if args.priority_class_name:
            manifest = priority_class_manifest(args.priority_class_name, args.priority_class_value)
            self.priority_class = k8s.scheduling.v1.PriorityClass(
                f"{name}-priority-class", metadata=manifest["metadata"], value=manifest["value"],
                global_default=manifest["globalDefault"], preemption_policy=manifest["preemptionPolicy"],
                description=manifest["description"], opts=k8s_child)

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": server.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "baseline"}}, opts=k8s_child)
        self.certificate = k8s.apiextensions.CustomResource(
            f"{name}-tls", api_version=CERT_MANAGER_API, kind="Certificate",
            metadata={"name": server.tls_secret, "namespace": server.namespace},
            spec=certificate_manifest(server, args.tls_issuer_name, args.tls_issuer_kind)["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace] + list(args.after)))

        resources = SERVER_RESOURCES
        if args.server_resources:
            resources = tuple((kind, tuple(sorted(values.items())))
                              for kind, values in sorted(args.server_resources.items()))
        resolved = self.unseal_key.arn.apply(lambda arn: dataclasses.replace(server, kms_key_id=arn))
        self.server_hcl = resolved.apply(render_server_hcl)
        self.values = pulumi.Output.all(resolved, self.role.arn).apply(lambda values: chart_values(
            values[0], ReleaseSpec(
                image_tag=args.image_tag, service_account_annotations=((IRSA_ANNOTATION, values[1]),),
                data_storage_size=args.data_storage_size, audit_storage_size=args.audit_storage_size,
                storage_class=args.storage_class, service_monitor=args.service_monitor,
                resources=resources, priority_class_name=args.priority_class_name,
                tls_reload=args.tls_reload_interval_seconds > 0,
                tls_reload_interval_seconds=args.tls_reload_interval_seconds or DEFAULT_INTERVAL_SECONDS)))
        flavour = server.flavour_info
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=server.release,
            chart=flavour.chart,
            version=args.chart_version,
            repository_opts={"repo": flavour.chart_repo},
            namespace=server.namespace,
            values=self.values,
            atomic=False,
            wait_for_jobs=False,
            skip_await=True,  # pods stay unready until bootstrap.yml initialises and unseals them
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[
                self.certificate, self.unseal_policy] + ([self.priority_class] if self.priority_class else [])
                + list(args.after)))
        self.address = server.active_address
        self.ca_secret = server.tls_secret
        self.register_outputs({
            "address": self.address,
            "roleArn": self.role.arn,
            "unsealKeyArn": self.unseal_key.arn,
        })
