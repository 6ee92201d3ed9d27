"""Typed stack configuration for both projects.

Each field is one key of the project's config schema (``Pulumi.yaml``), named as the camelCase of the field
name and read by the field's type. Defaults live only in ``Pulumi.yaml`` (the CLI applies them), so there is
one place to look; a unit test keeps these fields and the schema equal.
"""

import dataclasses
import os
import typing
from typing import List

import pulumi


def config_key(field_name):
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _read(config, field):
    key = config_key(field.name)
    kind = field.type
    secret = field.metadata.get("secret", False)
    if typing.get_origin(kind) is typing.Union:  # Optional[...]: may be absent
        if secret:
            return config.get_secret(key)
        return config.get(key)
    if kind is bool:
        return config.require_bool(key)
    if kind is int:
        return config.require_int(key)
    if typing.get_origin(kind) in (list, List):
        value = config.require_object(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("config %s must be a list of strings, got %r" % (key, value))
        return value
    return config.require(key)


def read_settings(cls, config: pulumi.Config):
    """An instance of the dataclass ``cls`` from ``config`` (keys and types as declared in Pulumi.yaml)."""
    return cls(**{field.name: _read(config, field) for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class PlatformSettings:
    """``pulumi/platform`` config (project ``heracles-platform``)."""

    environment: str
    aws_account_id: str
    aws_partition: str
    cluster_mode: str
    cluster_name: str
    cluster_version: str
    cluster_role_arn: str
    subnet_ids: List[str]
    public_access_cidrs: List[str]
    node_instance_types: List[str]
    node_count: int
    oidc_provider_arn: str
    oidc_issuer: str
    kms_plugin_role_arns: List[str]
    kms_admin_role_arns: List[str]
    deployer_role_arn: str
    operator_role_arns: List[str]
    control_plane_log_kms: bool
    control_plane_log_retention_days: int
    kms_deletion_window_days: int
    kms_rotation_period_days: int
    deletion_protection: bool
    monitoring: bool
    vault_data_dir: str
    vault_flavour: str
    vault_chart_version: str
    vault_image_tag: str
    vault_namespace: str
    vault_release_name: str
    vault_raft_join: str
    private_zone_id: str
    vault_tls_issuer: str
    vault_tls_issuer_kind: str
    vault_tls_issuer_mode: str
    cert_manager_chart_version: str
    trust_manager_chart_version: str
    vault_storage_class: str
    vault_data_storage_size: str
    vault_audit_storage_size: str
    vault_log_level: str
    vault_init_recovery_window_days: int
    eso_chart_version: str
    eso_replicas: int
    eso_secrets_prefix: str
    vault_ca_bundle: str
    https_egress_cidrs: List[str]
    vault_client_cidrs: List[str]
    operations_image: str
    monitoring_namespace: str
    prometheus_rule_labels: List[str]
    backup_aws_cli_image: str

    @property
    def tags(self):
        return {"project": "heracles", "environment": self.environment, "managed-by": "pulumi"}


@dataclasses.dataclass(frozen=True)
class VaultConfigSettings:
    """``pulumi/vault`` config (project ``heracles-vault``)."""

    environment: str
    vault_data_dir: str
    vault_flavour: str
    platform_stack: str
    vault_token_from: str


def _typed(field, value):
    if typing.get_origin(field.type) in (list, List) and not isinstance(value, list):
        raise ValueError("config %s must be a list, got %r" % (config_key(field.name), value))
    return value


def settings_from_files(cls, project_dir, stack):
    """``cls`` from ``Pulumi.yaml`` defaults and ``Pulumi.<stack>.yaml`` values, without the Pulumi engine.

    For tools that render what a stack deploys (``make manifests``): the same typed settings the program reads.
    Secret keys (``secure:`` values) are left out: nothing rendered from files may depend on a secret.
    """
    import yaml  # pylint: disable=import-outside-toplevel

    with open(os.path.join(project_dir, "Pulumi.yaml")) as handle:
        project = yaml.safe_load(handle)
    with open(os.path.join(project_dir, "Pulumi.%s.yaml" % stack)) as handle:
        values = (yaml.safe_load(handle) or {}).get("config") or {}
    prefix = project["name"] + ":"
    config = {key: decl["default"] for key, decl in (project.get("config") or {}).items()
              if isinstance(decl, dict) and "default" in decl}
    config.update((key[len(prefix):], value) for key, value in values.items() if key.startswith(prefix))
    kwargs = {}
    for field in dataclasses.fields(cls):
        key = config_key(field.name)
        if field.metadata.get("secret"):
            continue
        if key not in config:
            raise ValueError("Pulumi.%s.yaml: required key %s is not set (and has no default)" % (stack, key))
        kwargs[field.name] = _typed(field, config[key])
    return cls(**kwargs), values
