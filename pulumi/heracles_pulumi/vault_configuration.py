"""Vault's own configuration through pulumi-vault, from the declared data (``vault_data.load()``).

The same data ``roles/configure`` applies: password policies, secrets engines (KV v2 settings included),
ACL policies, Kubernetes auth mounts with their roles (and config, when a host is given), audit devices.
Audit devices are applied only with an ``audit_file_path``: OpenBao (>= 2.4) refuses API-created ones,
so for OpenBao the platform declares them in the server config instead.
"""

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from heracles_pulumi.vault_objects import duration_seconds


@dataclass
class VaultConfigurationArgs:
    """``kubernetes_host`` configures each Kubernetes auth mount for Vault running in that cluster: Vault reviews
    tokens with its own service account (no reviewer JWT, no CA to carry: it reads its pod's)."""

    desired: dict
    address: pulumi.Input[str]
    ca_cert_file: str = ""
    token: Optional[pulumi.Input[str]] = None
    audit_file_path: str = ""
    kubernetes_host: Optional[pulumi.Input[str]] = None


def init_store_root_token(secret_name):
    """The root token vault_init stored in the init store's Secrets Manager secret, as a Pulumi secret.

    For the first ``pulumi up`` right after bootstrap.yml only; operators use their own token (VAULT_TOKEN) after.
    """
    # only this path needs the AWS provider
    import pulumi_aws as aws  # pylint: disable=import-outside-toplevel

    material = aws.secretsmanager.get_secret_version_output(secret_id=secret_name)
    return pulumi.Output.secret(material.secret_string.apply(lambda text: json.loads(text)["root_token"]))


def _slug(path):
    return path.strip("/").replace("/", "-")


class VaultConfiguration(pulumi.ComponentResource):
    """``heracles:vault:Configuration`` -- every object of the declared data, nothing else."""

    def __init__(self, name: str, args: VaultConfigurationArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("heracles:vault:Configuration", name, None, opts)
        desired = args.desired
        self.provider = vault.Provider(
            f"{name}-provider", address=args.address, ca_cert_file=args.ca_cert_file or None,
            token=pulumi.Output.secret(args.token) if args.token is not None else None,
            skip_child_token=True, opts=pulumi.ResourceOptions(parent=self))
        use = pulumi.ResourceOptions(parent=self, provider=self.provider)

        self.password_policies = [vault.PasswordPolicy(
            f"{name}-password-policy-{policy}", name=policy, policy=text, opts=use)
            for policy, text in sorted(desired["password_policies"].items())]

        self.mounts = {}
        for mount in desired["mounts"]:
            self.mounts[mount["path"]] = vault.Mount(
                f"{name}-mount-{_slug(mount['path'])}", path=mount["path"], type=mount["type"],
                description=mount["description"],
                options={key: str(value) for key, value in mount["options"].items()} or None, opts=use)
            if "kv_config" in mount:
                vault.kv.SecretBackendV2(
                    f"{name}-kv-config-{_slug(mount['path'])}", mount=self.mounts[mount["path"]].path,
                    max_versions=mount["kv_config"]["max_versions"], cas_required=mount["kv_config"]["cas_required"],
                    opts=use)

        self.policies = {policy: vault.Policy(f"{name}-policy-{policy}", name=policy, policy=text, opts=use)
                         for policy, text in sorted(desired["policies"].items())}

        self.auth_backends = {}
        for auth in desired["auth"]:
            backend = vault.AuthBackend(
                f"{name}-auth-{_slug(auth['path'])}", type=auth["type"], path=auth["path"],
                description=auth["description"], opts=use)
            self.auth_backends[auth["path"]] = backend
            if args.kubernetes_host:
                vault.kubernetes.AuthBackendConfig(
                    f"{name}-auth-config-{_slug(auth['path'])}", backend=backend.path,
                    kubernetes_host=args.kubernetes_host, opts=use)
            for role in auth["roles"]:
                vault.kubernetes.AuthBackendRole(
                    f"{name}-role-{_slug(auth['path'])}-{role['name']}",
                    backend=backend.path, role_name=role["name"],
                    bound_service_account_names=role["bound_service_account_names"],
                    bound_service_account_namespaces=role["bound_service_account_namespaces"],
                    token_policies=role["policies"], audience=role.get("audience") or None,
                    token_ttl=duration_seconds(role.get("token_ttl")),
                    token_max_ttl=duration_seconds(role.get("token_max_ttl")),
                    token_no_default_policy=role.get("token_no_default_policy") or None,
                    opts=pulumi.ResourceOptions(parent=self, provider=self.provider,
                                                depends_on=[self.policies[p] for p in role["policies"]
                                                            if p in self.policies]))

        self.audit_devices = []
        if args.audit_file_path:
            for device in desired["audit"]:
                options = {key: str(value) for key, value in device["options"].items()}
                options["file_path"] = args.audit_file_path
                self.audit_devices.append(vault.Audit(
                    f"{name}-audit-{_slug(device['path'])}", path=device["path"], type=device["type"],
                    description=device["description"], options=options, opts=use))
        self.register_outputs({
            "policies": sorted(self.policies),
            "mounts": sorted(self.mounts),
            "authBackends": sorted(self.auth_backends),
        })
