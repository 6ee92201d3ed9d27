"""IAM Roles for Service Accounts (IRSA): a role that exactly one Kubernetes service account can assume."""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from heracles_pulumi.policies import irsa_trust_policy, to_json

IRSA_AUDIENCE = "sts.amazonaws.com"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


@dataclass
class OidcProvider:
    """The cluster's IAM OIDC provider: its ARN and issuer URL (Inputs: the cluster may still be creating)."""

    arn: pulumi.Input[str]
    issuer: pulumi.Input[str]


@dataclass
class IrsaRoleArgs:
    role_name: str
    oidc: OidcProvider
    namespace: str
    service_account: str
    description: str = ""
    max_session_seconds: int = 3600
    permissions_boundary_arn: Optional[str] = None
    tags: Optional[dict] = None


class IrsaRole(pulumi.ComponentResource):
    """``heracles:iam:IrsaRole`` -- the role and its trust (provider, ``sub``, ``aud`` pinned).

    Permissions are attached by the owner of the resources the role uses (``attach_inline_policy``),
    because a key policy and the role policy name each other and must be created in that order.
    """

    def __init__(self, name: str, args: IrsaRoleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:iam:IrsaRole", name, None, opts)
        self._name = name
        trust = pulumi.Output.all(args.oidc.arn, args.oidc.issuer).apply(
            lambda values: to_json(irsa_trust_policy(values[0], values[1], args.namespace, args.service_account,
                                                     IRSA_AUDIENCE)))
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description=args.description or "IRSA for %s/%s" % (args.namespace, args.service_account),
            assume_role_policy=trust,
            max_session_duration=args.max_session_seconds,
            permissions_boundary=args.permissions_boundary_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self))
        self.arn = self.role.arn
        self.service_account_annotations = self.arn.apply(lambda arn: {IRSA_ANNOTATION: arn})
        self.register_outputs({"arn": self.arn})

    def attach_inline_policy(self, suffix: str, document: pulumi.Input[str],
                             parent: pulumi.Resource) -> aws.iam.RolePolicy:
        """The role's only permissions: one inline policy, a child of ``parent`` (the owning component)."""
        return aws.iam.RolePolicy(
            f"{self._name}-{suffix}",
            name=f"{suffix}",
            role=self.role.name,
            policy=document,
            opts=pulumi.ResourceOptions(parent=parent))
