"""``heracles:delivery:Workloads`` -- applies the objects ``heracles_pulumi.delivery.render`` returns, one resource each.

Core kinds become their typed resources, custom resources ``CustomResource``; each object's fields are passed
through unchanged, so what Pulumi registers is exactly what ``make manifests`` writes (a test compares them).
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional

import pulumi
import pulumi_kubernetes as k8s

from heracles_pulumi.delivery import object_id

_TYPED = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
}


def _snake(key):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def resource_name(prefix, obj):
    meta = obj["metadata"]
    return "%s-%s-%s-%s" % (prefix, obj["kind"].lower(), meta.get("namespace", "cluster"), meta["name"])


@dataclass
class WorkloadDeliveryArgs:
    """``objects`` from ``stack.delivery_objects``; every one waits for ``after`` (Vault's and ESO's namespaces),
    custom resources also for ``crd_owners`` (the releases that install their CRDs)."""

    objects: List[dict]
    after: List[pulumi.Resource] = field(default_factory=list)
    crd_owners: List[pulumi.Resource] = field(default_factory=list)


class WorkloadDelivery(pulumi.ComponentResource):
    """Objects in an app namespace created here also wait for that Namespace."""

    def __init__(self, name: str, args: WorkloadDeliveryArgs, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:delivery:Workloads", name, None, opts)
        self.namespaces, self.resources = {}, {}
        after, crd_owners = args.after, args.crd_owners
        for obj in args.objects:
            meta = obj["metadata"]
            depends = list(after)
            if meta.get("namespace") in self.namespaces:
                depends.append(self.namespaces[meta["namespace"]])
            fields = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
            typed = _TYPED.get((obj["apiVersion"], obj["kind"]))
            if typed is None:
                depends = depends + list(crd_owners)
            opts_ = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends)
            if typed is not None:
                resource = typed(resource_name(name, obj), opts=opts_, **{_snake(k): v for k, v in fields.items()})
            else:
                resource = k8s.apiextensions.CustomResource(
                    resource_name(name, obj), api_version=obj["apiVersion"], kind=obj["kind"],
                    metadata=fields.pop("metadata"), spec=fields.pop("spec"), opts=opts_)
                if fields:
                    raise ValueError("%s: CustomResource carries only metadata and spec, not %s"
                                     % (object_id(obj), sorted(fields)))
            if obj["kind"] == "Namespace":
                self.namespaces[meta["name"]] = resource
            self.resources[object_id(obj)] = resource
        self.register_outputs({"objects": sorted(self.resources)})
