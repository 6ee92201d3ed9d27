"""Vault's internal endpoint: an internal NLB in front of the active node and its record in a private zone.

Operators, playbooks (inventories/<env>: the deployment facts' ``vault.address``) and pulumi/vault reach Vault
there. The load balancer targets pod IPs and keeps the client's address, so Vault's NetworkPolicy can admit
exactly ``vaultClientCidrs``; its certificate carries the record's name (``ServerSpec.external_hostnames``).
"""

from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from heracles_pulumi.server_config import API_PORT, server_labels

# The AWS Load Balancer Controller's annotations (an EKS add-on or its Helm chart must be installed).
NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=true",
}
ACTIVE_LABEL = {"vault-active": "true"}  # set on the active pod by service_registration "kubernetes"


def endpoint_service(server, client_cidrs):
    """A LoadBalancer Service selecting only the active Vault pod (writes never go through a standby)."""
    selector = dict(server_labels(server), **ACTIVE_LABEL)
    spec = {"type": "LoadBalancer", "selector": selector,
            "ports": [{"name": "https", "port": API_PORT, "targetPort": API_PORT, "protocol": "TCP"}]}
    if client_cidrs:
        spec["loadBalancerSourceRanges"] = list(client_cidrs)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "%s-internal-endpoint" % server.release, "namespace": server.namespace,
                         "annotations": dict(NLB_ANNOTATIONS)},
            "spec": spec}


@dataclass
class EndpointArgs:
    server: object  # ServerSpec
    hostname: str
    private_zone_id: str
    client_cidrs: List[str] = field(default_factory=list)
    depends_on: List[pulumi.Resource] = field(default_factory=list)


class InternalEndpoint(pulumi.ComponentResource):
    """``heracles:vault:Endpoint`` -- the internal NLB Service and the private DNS record pointing at it."""

    def __init__(self, name: str, args: EndpointArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:vault:Endpoint", name, None, opts)
        obj = endpoint_service(args.server, args.client_cidrs)
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=obj["metadata"], spec=obj["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(args.depends_on)))
        target = self.service.status.apply(lambda status: status.load_balancer.ingress[0].hostname)
        self.record = aws.route53.Record(
            f"{name}-record", zone_id=args.private_zone_id, name=args.hostname, type="CNAME", ttl=60,
            records=[target], opts=pulumi.ResourceOptions(parent=self))
        self.address = "https://%s:%d" % (args.hostname, API_PORT)
        self.register_outputs({"address": self.address, "loadBalancer": target})
