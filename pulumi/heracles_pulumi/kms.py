"""A customer-managed KMS key with rotation on, an alias, and a least-privilege key policy."""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import pulumi
import pulumi_aws as aws

from heracles_pulumi.policies import ACCOUNT_ROOT, KeyGrant, key_policy, to_json

MIN_ROTATION_DAYS = 90
MAX_ROTATION_DAYS = 2560


@dataclass
class KmsKeyArgs:
    """``alias`` without the ``alias/`` prefix; ``grants`` are the only principals that may use the key.

    ``account_root_arn`` (``arn:<partition>:iam::<account>:root``): when set, the policy also lets the account's IAM
    administrators recover the key policy (``policies.ACCOUNT_ROOT_ACTIONS``, no use of the key), so deleting every
    named administrator cannot make the key unmanageable. ``region``: the key's region when it is not the provider's
    (a replica bucket's key).
    """

    alias: str
    description: str
    admin_arns: Sequence[str]
    grants: List[KeyGrant] = field(default_factory=list)
    deletion_window_days: int = 30
    rotation_period_days: int = 365
    protect: bool = False
    tags: Optional[dict] = None
    account_root_arn: str = ""
    region: Optional[str] = None


class KmsKey(pulumi.ComponentResource):
    """``heracles:kms:Key`` -- key, alias and policy. Rotation cannot be turned off through these args."""

    def __init__(self, name: str, args: KmsKeyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:kms:Key", name, None, opts)
        if not MIN_ROTATION_DAYS <= args.rotation_period_days <= MAX_ROTATION_DAYS:
            raise ValueError("%s: rotation_period_days must be between %d and %d, got %d"
                             % (name, MIN_ROTATION_DAYS, MAX_ROTATION_DAYS, args.rotation_period_days))
        if not args.admin_arns:
            raise ValueError("%s: at least one key administrator is required (else the key cannot be managed)" % name)
        if args.account_root_arn and not ACCOUNT_ROOT.match(args.account_root_arn):
            raise ValueError("%s: account_root_arn must be arn:<partition>:iam::<account>:root, got %r"
                             % (name, args.account_root_arn))
        principal_inputs = [grant.principal_arns for grant in args.grants]
        policy = pulumi.Output.all(list(args.admin_arns), *principal_inputs).apply(
            lambda resolved: to_json(key_policy(resolved[0], [
                KeyGrant(grant.sid, arns, grant.actions, grant.condition, grant.principal_type)
                for grant, arns in zip(args.grants, resolved[1:])], account_root=args.account_root_arn or None)))
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            rotation_period_in_days=args.rotation_period_days,
            deletion_window_in_days=args.deletion_window_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            policy=policy,
            region=args.region,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.alias}",
            target_key_id=self.key.key_id,
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self))
        self.arn = self.key.arn
        self.alias_name = self.alias.name
        self.register_outputs({"arn": self.arn, "alias": self.alias_name})
