"""Vault's own configuration through pulumi-vault, from the declared data (``vault_data.load()``).

The same data ``roles/configure`` applies: password policies, secrets engines (KV v2 settings included, database
engines with their lease TTLs), ACL policies, Kubernetes auth mounts with their roles (and config, when a host is
given), database connections (admin password from Secrets Manager) with their roles, audit devices.
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


def database_admin_password(secret_name, key="password"):
    """The initial admin password of a database connection, from its Secrets Manager secret (a bare password or JSON
    with ``password``), as a Pulumi secret."""
    import pulumi_aws as aws  # pylint: disable=import-outside-toplevel

    material = aws.secretsmanager.get_secret_version_output(secret_id=secret_name)

    def pick(text):
        text = (text or "").strip()
        return json.loads(text)[key] if text.startswith("{") else text
    return pulumi.Output.secret(material.secret_string.apply(pick))


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
            lease = mount.get("config") or {}
            self.mounts[mount["path"]] = vault.Mount(
                f"{name}-mount-{_slug(mount['path'])}", path=mount["path"], type=mount["type"],
                description=mount["description"],
                options={key: str(value) for key, value in mount["options"].items()} or None,
                default_lease_ttl_seconds=lease.get("default_lease_ttl"),
                max_lease_ttl_seconds=lease.get("max_lease_ttl"), opts=use)
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

        self.database_connections, self.database_roles = {}, {}
        for databases in desired.get("databases") or []:
            self._database(name, databases, use)

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
            "databaseConnections": sorted(self.database_connections),
        })

    def _database(self, name, databases, use):
        """Each connection whose data names its admin secret (Secrets Manager), with the roles that use it.

        The admin password is a Pulumi secret read from that secret. pulumi-vault cannot rotate the root credential:
        a connection it creates carries no rotation stamp, so playbooks/rotate.yml (and its in-cluster CronJob)
        rotates it on its next run -- run it right after the first ``pulumi up``.
        """
        mount = self.mounts[databases["mount"]]
        for conn in databases["connections"]:
            if not conn["admin_secret"]:
                continue
            postgresql = vault.database.SecretBackendConnectionPostgresqlArgs(
                connection_url=conn["connection_url"], username=conn["username"],
                password=database_admin_password(conn["admin_secret"]),
                max_open_connections=conn.get("max_open_connections"))
            key = "%s/%s" % (databases["mount"], conn["name"])
            self.database_connections[key] = vault.database.SecretBackendConnection(
                f"{name}-db-{_slug(key)}", backend=mount.path, name=conn["name"], plugin_name=conn["plugin"],
                allowed_roles=conn["allowed_roles"], verify_connection=True, postgresql=postgresql, opts=use)
            for role in databases["roles"]:
                if role["connection"] != conn["name"]:
                    continue
                role_key = "%s/%s" % (databases["mount"], role["name"])
                self.database_roles[role_key] = vault.database.SecretBackendRole(
                    f"{name}-db-role-{_slug(role_key)}", backend=mount.path, name=role["name"],
                    db_name=self.database_connections[key].name,
                    creation_statements=role["creation_statements"],
                    revocation_statements=role["revocation_statements"] or None,
                    renew_statements=role["renew_statements"] or None,
                    rollback_statements=role["rollback_statements"] or None,
                    default_ttl=role["default_ttl"], max_ttl=role["max_ttl"], opts=use)
