"""Where ``playbooks/bootstrap.yml`` stores Vault's init material: a Secrets Manager secret under its own key.

The stack creates the secret *without a value*; ``vault_init`` (init_store=aws_secretsmanager) writes the
recovery keys and root token into it exactly once. Only the operator roles may use the key, only through
Secrets Manager.
"""

from dataclasses import dataclass
from typing import List, Optional

import pulumi
import pulumi_aws as aws

from heracles_pulumi.kms import KmsKey, KmsKeyArgs
from heracles_pulumi.policies import INIT_MATERIAL_ACTIONS, KeyGrant, via_service


@dataclass
class InitStoreArgs:
    secret_name: str
    key_alias: str
    region: str
    operator_role_arns: List[str]
    kms_admin_arns: List[str]
    kms_deletion_window_days: int
    kms_rotation_period_days: int
    recovery_window_days: int
    protect: bool = False
    tags: Optional[dict] = None
    kms_account_root_arn: str = ""  # KmsKeyArgs.account_root_arn (the narrow lock-out-recovery statement)


class InitStore(pulumi.ComponentResource):
    """``heracles:vault:InitStore`` -- the init-material key and the (empty) secret the Ansible bootstrap fills."""

    def __init__(self, name: str, args: InitStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:vault:InitStore", name, None, opts)
        if not args.operator_role_arns:
            raise ValueError("operatorRoleArns is required: somebody must be able to read the recovery keys")
        self.key = KmsKey(f"{name}-kms", KmsKeyArgs(
            alias=args.key_alias,
            description=f"Vault init material ({args.secret_name})",
            admin_arns=args.kms_admin_arns,
            grants=[KeyGrant("OperatorsThroughSecretsManager", list(args.operator_role_arns), INIT_MATERIAL_ACTIONS,
                             via_service("secretsmanager", args.region))],
            deletion_window_days=args.kms_deletion_window_days,
            rotation_period_days=args.kms_rotation_period_days,
            protect=args.protect, tags=args.tags, account_root_arn=args.kms_account_root_arn), opts=pulumi.ResourceOptions(parent=self))
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=args.secret_name,
            description="OpenBao/Vault init material (heracles.secrets); written once by playbooks/bootstrap.yml",
            kms_key_id=self.key.arn,
            recovery_window_in_days=args.recovery_window_days,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.register_outputs({"secretArn": self.secret.arn, "keyAlias": self.key.alias_name})
