"""External Secrets Operator: its IRSA role, the Helm release and the AWS ClusterSecretStores.

ESO has no Vault identity: each app namespace's SecretStore logs in to Vault as the app (heracles_pulumi.delivery).
The AWS stores (Secrets Manager, Parameter Store under the ESO role's prefix) admit only namespaces labelled
``heracles.secrets/aws-secrets=true`` (apps that declare ``aws_secrets: true``).
"""

import copy
from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_kubernetes as k8s

from heracles_pulumi.delivery import AWS_SECRETS_LABEL, ESO_API
from heracles_pulumi.iam import IRSA_ANNOTATION, IrsaRole, IrsaRoleArgs, OidcProvider
from heracles_pulumi.policies import eso_read_policy, to_json
from heracles_pulumi.server_config import PRIORITY_CLASS

ESO_CHART = "external-secrets"
ESO_CHART_REPO = "https://charts.external-secrets.io"


@dataclass
class EsoArgs:
    namespace: str
    service_account: str
    chart_version: str
    replicas: int
    service_monitor: bool
    role_name: str
    oidc: OidcProvider
    partition: str
    region: str
    account_id: str
    secrets_prefix: str
    aws_store_name: str = "aws-secretsmanager"
    ssm_store_name: str = "aws-parameterstore"
    secrets_kms_key_arns: List[str] = field(default_factory=list)
    tags: Optional[dict] = None


# Requests and limits of each ESO component (controller, webhook, cert controller); the controller holds the informers.
ESO_RESOURCES = {
    "controller": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "webhook": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
    "certController": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
}
# The pods' app.kubernetes.io/name per component (the chart's selectorLabels), for their zone spread.
ESO_COMPONENT_NAMES = {"controller": ESO_CHART, "webhook": ESO_CHART + "-webhook",
                       "certController": ESO_CHART + "-cert-controller"}


def _zone_spread(component):
    return [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app.kubernetes.io/name": ESO_COMPONENT_NAMES[component]}}}]


def eso_chart_values(replicas, service_account, role_arn, service_monitor, priority_class_name=PRIORITY_CLASS,
                     resources=None):
    """Controller, webhook and cert controller: ``replicas`` each, leader election, PDBs, optional ServiceMonitor.

    Every component gets requests and limits (``resources``, by component, default ``ESO_RESOURCES``), the platform's
    PriorityClass (empty ``priority_class_name``: none) and a spread across zones of its own pods.
    """
    if replicas < 2:
        raise ValueError("ESO needs at least 2 replicas (with leader election) to survive a node drain, got %d" % replicas)
    resources = copy.deepcopy(resources or ESO_RESOURCES)
    if set(resources) != set(ESO_COMPONENT_NAMES):
        raise ValueError("resources must name exactly %s, got %s" % (sorted(ESO_COMPONENT_NAMES), sorted(resources)))
    pdb = {"enabled": True, "minAvailable": 1}
    monitor = {"enabled": service_monitor}
    priority = {"priorityClassName": priority_class_name} if priority_class_name else {}
    return dict({
        "installCRDs": True,
        "replicaCount": replicas,
        "leaderElect": True,
        "podDisruptionBudget": pdb,
        "serviceMonitor": monitor,
        "metrics": {"service": {"enabled": service_monitor}},
        "serviceAccount": {"create": True, "name": service_account, "annotations": {IRSA_ANNOTATION: role_arn}},
        "resources": resources["controller"],
        "topologySpreadConstraints": _zone_spread("controller"),
        "webhook": dict({"replicaCount": replicas, "podDisruptionBudget": pdb,
                         "resources": resources["webhook"], "topologySpreadConstraints": _zone_spread("webhook")},
                        **priority),
        "certController": dict({"replicaCount": replicas, "podDisruptionBudget": pdb,
                                "resources": resources["certController"],
                                "topologySpreadConstraints": _zone_spread("certController")}, **priority),
    }, **priority)


def aws_store_spec(service, region, service_account, namespace):
    """IRSA as ESO's service account; only namespaces labelled for AWS secrets may use the store."""
    return {
        "provider": {"aws": {
            "service": service,
            "region": region,
            "auth": {"jwt": {"serviceAccountRef": {"name": service_account, "namespace": namespace}}},
        }},
        "conditions": [{"namespaceSelector": {"matchLabels": {AWS_SECRETS_LABEL: "true"}}}],
    }


class ExternalSecretsOperator(pulumi.ComponentResource):
    """``heracles:eso:Operator`` -- ESO in HA with AWS stores (IRSA) restricted to labelled namespaces."""

    def __init__(self, name: str, args: EsoArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:eso:Operator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            role_name=args.role_name, oidc=args.oidc, namespace=args.namespace, service_account=args.service_account,
            description=f"External Secrets Operator: read {args.secrets_prefix}/*", tags=args.tags), opts=child)
        self.read_policy = self.role.attach_inline_policy("read", to_json(eso_read_policy(
            args.partition, args.region, args.account_id, args.secrets_prefix, args.secrets_kms_key_arns)), parent=self)

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": args.namespace},
            opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=ESO_CHART,
            chart=ESO_CHART,
            version=args.chart_version,
            repository_opts={"repo": ESO_CHART_REPO},
            namespace=args.namespace,
            values=self.role.arn.apply(lambda arn: eso_chart_values(
                args.replicas, args.service_account, arn, args.service_monitor)),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace, self.read_policy]))

        store_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.release])
        self.stores = {
            args.aws_store_name: k8s.apiextensions.CustomResource(
                f"{name}-store-secretsmanager", api_version=ESO_API, kind="ClusterSecretStore",
                metadata={"name": args.aws_store_name},
                spec=aws_store_spec("SecretsManager", args.region, args.service_account, args.namespace),
                opts=store_opts),
            args.ssm_store_name: k8s.apiextensions.CustomResource(
                f"{name}-store-parameterstore", api_version=ESO_API, kind="ClusterSecretStore",
                metadata={"name": args.ssm_store_name},
                spec=aws_store_spec("ParameterStore", args.region, args.service_account, args.namespace),
                opts=store_opts),
        }
        self.register_outputs({
            "roleArn": self.role.arn,
            "stores": sorted(self.stores),
        })
