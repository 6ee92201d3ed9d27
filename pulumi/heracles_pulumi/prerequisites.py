"""What a fresh cluster needs before Vault and ESO can start: cert-manager with Vault's CA issuer, that CA in the
app namespaces, an encrypted gp3 StorageClass, and (with monitoring) the Prometheus Operator's CRDs.

The object builders are pure functions (``issuer_objects``, ``ca_bundle``, ``storage_class``) so tests validate
them against the upstream CRD schemas; ``ClusterPrerequisites`` applies them.

Vault's CA, when this stack creates it, is cert-manager's documented bootstrap: a self-signed ClusterIssuer signs
a CA Certificate (its key never leaves the cluster, nothing of it is in Pulumi's state), and a CA ClusterIssuer
signs Vault's listener certificate with it. trust-manager copies the CA's public certificate into ConfigMap
``vault-ca`` of every namespace labelled for the environment, which the apps' SecretStores trust.
"""

from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_kubernetes as k8s

from heracles_pulumi.delivery import ENV_LABEL, VAULT_CA_CONFIGMAP, VAULT_CA_KEY

CERT_MANAGER_API = "cert-manager.io/v1"
TRUST_API = "trust.cert-manager.io/v1alpha1"
JETSTACK_REPO = "https://charts.jetstack.io"
CERT_MANAGER_NAMESPACE = "cert-manager"  # also trust-manager's trust namespace (where it reads sources)
ISSUER_MODES = ("create", "existing")
PROMETHEUS_RULES_CRD = "prometheusrules.monitoring.coreos.com"


@dataclass
class PrerequisitesArgs:
    """``issuer_mode`` create: the CA issuer ``issuer_name`` is made here; existing: it must exist (read, checked)."""

    environment: str
    cluster_name: str
    issuer_name: str
    issuer_mode: str
    issuer_kind: str
    vault_namespace: str
    cert_manager_version: str
    trust_manager_version: str
    distribute_ca: bool
    storage_class: str = ""
    storage_kms_key_arn: Optional[pulumi.Input[str]] = None
    monitoring: bool = False
    depends_on: List[pulumi.Resource] = field(default_factory=list)


def _meta(name, namespace=None):
    meta = {"name": name, "labels": {"app.kubernetes.io/managed-by": "heracles"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def ca_secret_name(issuer_name):
    return issuer_name


def issuer_objects(cluster_name, issuer_name):
    """Self-signed bootstrap issuer, the CA certificate it signs (10 years, renewed a month ahead), the CA issuer."""
    bootstrap = "%s-selfsigned" % cluster_name
    return [
        {"apiVersion": CERT_MANAGER_API, "kind": "ClusterIssuer", "metadata": _meta(bootstrap),
         "spec": {"selfSigned": {}}},
        {"apiVersion": CERT_MANAGER_API, "kind": "Certificate", "metadata": _meta(issuer_name, CERT_MANAGER_NAMESPACE),
         "spec": {"isCA": True, "commonName": "%s Vault CA" % cluster_name, "secretName": ca_secret_name(issuer_name),
                  "duration": "87600h", "renewBefore": "720h",
                  "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                  "issuerRef": {"name": bootstrap, "kind": "ClusterIssuer", "group": "cert-manager.io"}}},
        {"apiVersion": CERT_MANAGER_API, "kind": "ClusterIssuer", "metadata": _meta(issuer_name),
         "spec": {"ca": {"secretName": ca_secret_name(issuer_name)}}},
    ]


def ca_bundle(environment, issuer_name):
    """trust-manager: the CA's public certificate as ConfigMap vault-ca in every namespace of the environment."""
    return {"apiVersion": TRUST_API, "kind": "Bundle", "metadata": _meta(VAULT_CA_CONFIGMAP),
            "spec": {"sources": [{"secret": {"name": ca_secret_name(issuer_name), "key": "ca.crt"}}],
                     "target": {"configMap": {"key": VAULT_CA_KEY},
                                "namespaceSelector": {"matchLabels": {ENV_LABEL: environment}}}}}


def storage_class(name, kms_key_arn=None):
    """gp3 through the EBS CSI driver, encrypted (with the given key, else the account's EBS default key)."""
    parameters = {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    if kms_key_arn:
        parameters["kmsKeyId"] = kms_key_arn
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": _meta(name),
            "provisioner": "ebs.csi.aws.com", "parameters": parameters, "reclaimPolicy": "Retain",
            "allowVolumeExpansion": True, "volumeBindingMode": "WaitForFirstConsumer"}


def cert_manager_values(monitoring):
    return {"crds": {"enabled": True, "keep": True}, "replicaCount": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "webhook": {"replicaCount": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
            "prometheus": {"enabled": monitoring, "servicemonitor": {"enabled": monitoring}}}


def trust_manager_values():
    return {"crds": {"enabled": True}, "replicaCount": 2, "app": {"trust": {"namespace": CERT_MANAGER_NAMESPACE}}}


class ClusterPrerequisites(pulumi.ComponentResource):
    """``heracles:prerequisites:Cluster`` -- cert-manager, Vault's CA issuer, CA distribution, storage, CRD checks."""

    def __init__(self, name: str, args: PrerequisitesArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:prerequisites:Cluster", name, None, opts)
        if args.issuer_mode not in ISSUER_MODES:
            raise ValueError("vaultTlsIssuerMode must be one of %s, got %r"
                             % (", ".join(ISSUER_MODES), args.issuer_mode))
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(args.depends_on))
        self.cert_manager = k8s.helm.v3.Release(
            f"{name}-cert-manager", name="cert-manager", chart="cert-manager", version=args.cert_manager_version,
            repository_opts={"repo": JETSTACK_REPO}, namespace=CERT_MANAGER_NAMESPACE, create_namespace=True,
            values=cert_manager_values(args.monitoring), opts=k8s_opts)
        after_crds = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.cert_manager])
        self.ready = [self.cert_manager]
        if args.issuer_mode == "create":
            if args.issuer_kind != "ClusterIssuer":
                raise ValueError("vaultTlsIssuerMode create makes a ClusterIssuer: set vaultTlsIssuerKind ClusterIssuer "
                                 "(or vaultTlsIssuerMode existing for an Issuer in %s)" % args.vault_namespace)
            self.issuer_objects = [
                k8s.apiextensions.CustomResource(
                    f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", api_version=obj["apiVersion"],
                    kind=obj["kind"], metadata=obj["metadata"], spec=obj["spec"], opts=after_crds)
                for obj in issuer_objects(args.cluster_name, args.issuer_name)]
            self.ready += self.issuer_objects
        else:
            # Read, not managed: a missing issuer stops `pulumi preview` here, before Vault's Certificate waits on it.
            issuer_id = args.issuer_name if args.issuer_kind == "ClusterIssuer" else "%s/%s" % (
                args.vault_namespace, args.issuer_name)
            self.ready.append(k8s.apiextensions.CustomResource.get(
                f"{name}-existing-issuer", id=issuer_id, api_version=CERT_MANAGER_API, kind=args.issuer_kind,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.cert_manager])))
        if args.distribute_ca:
            if args.issuer_mode != "create":
                raise ValueError("vaultTlsIssuerMode existing: set vaultCaBundle to the issuer's CA (the stack does "
                                 "not know where that CA's secret lives): pulumi config set vaultCaBundle -- "
                                 "\"$(cat ca.pem)\"")
            self.trust_manager = k8s.helm.v3.Release(
                f"{name}-trust-manager", name="trust-manager", chart="trust-manager",
                version=args.trust_manager_version, repository_opts={"repo": JETSTACK_REPO},
                namespace=CERT_MANAGER_NAMESPACE, values=trust_manager_values(), opts=after_crds)
            bundle = ca_bundle(args.environment, args.issuer_name)
            self.bundle = k8s.apiextensions.CustomResource(
                f"{name}-bundle-{VAULT_CA_CONFIGMAP}", api_version=bundle["apiVersion"], kind=bundle["kind"],
                metadata=bundle["metadata"], spec=bundle["spec"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                            depends_on=[self.trust_manager] + self.ready[1:]))
        if args.storage_class:
            sc = storage_class(args.storage_class)
            self.storage_class = k8s.storage.v1.StorageClass(
                f"{name}-storageclass-{args.storage_class}", metadata=sc["metadata"], provisioner=sc["provisioner"],
                parameters=(pulumi.Output.from_input(args.storage_kms_key_arn).apply(
                    lambda arn: storage_class(args.storage_class, arn)["parameters"])
                    if args.storage_kms_key_arn is not None else sc["parameters"]),
                reclaim_policy=sc["reclaimPolicy"], allow_volume_expansion=sc["allowVolumeExpansion"],
                volume_binding_mode=sc["volumeBindingMode"], opts=k8s_opts)
            self.ready.append(self.storage_class)
        if args.monitoring:
            # Checked, not installed: the Prometheus Operator (kube-prometheus-stack) owns its CRDs. Without them
            # `pulumi preview` stops here with the CRD's name instead of failing on the first PrometheusRule.
            self.ready.append(k8s.apiextensions.v1.CustomResourceDefinition.get(
                f"{name}-crd-prometheusrules", id=PROMETHEUS_RULES_CRD,
                opts=pulumi.ResourceOptions(parent=self, provider=provider)))
        self.register_outputs({"issuer": args.issuer_name})
