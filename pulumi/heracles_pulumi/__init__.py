"""Shared Pulumi components and pure functions for heracles.secrets.

Both projects import from here: ``pulumi/platform`` (AWS KMS/IAM, EKS Secrets encryption, the Vault
and ESO Helm releases, backups) and ``pulumi/vault`` (Vault's own configuration through pulumi-vault).

Modules that only compute values (``policies``, ``server_config``, ``chart_values``, ``vault_objects``,
``settings``) import no cloud provider, so they can be tested and used without Pulumi's engine.
Components (``kms``, ``iam``, ``cluster``, ``vault_release``, ``eso``, ``backup``, ``vault_config``) are
``pulumi.ComponentResource`` subclasses with typed Args dataclasses and ``heracles:<module>:<Type>`` tokens.
"""

__version__ = "0.1.0"
