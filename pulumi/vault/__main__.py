"""heracles-vault: Vault's own configuration (mounts, policies, Kubernetes auth, audit) from vault/.

Reads the stack config and the declared data with the collection's loader (the data roles/configure
applies), builds the configuration component, exports what it manages. Run it after
playbooks/bootstrap.yml has initialised and unsealed the cluster.
"""

import os
import sys

import pulumi

PULUMI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if PULUMI_DIR not in sys.path:
    sys.path.insert(0, PULUMI_DIR)  # the shared package heracles_pulumi

# pylint: disable=wrong-import-position
from heracles_pulumi import vaultdata  # noqa: E402
from heracles_pulumi.server_config import get_flavour  # noqa: E402
from heracles_pulumi.settings import VaultConfigSettings, read_settings  # noqa: E402
from heracles_pulumi.vault_configuration import VaultConfiguration, VaultConfigurationArgs  # noqa: E402

settings = read_settings(VaultConfigSettings, pulumi.Config())
if get_flavour(settings.vault_flavour).declares_audit and settings.audit_file_path:
    raise ValueError("auditFilePath must be empty for OpenBao: it refuses API-created audit devices; "
                     "pulumi/platform declares them in the server config")
desired = vaultdata.loader().load(vaultdata.data_dir(settings.vault_data_dir), [settings.environment])

configuration = VaultConfiguration(f"heracles-{settings.environment}", VaultConfigurationArgs(
    desired=desired, address=settings.vault_address, ca_cert_file=settings.vault_ca_cert_file,
    token=settings.vault_token, audit_file_path=settings.audit_file_path,
    kubernetes_host=settings.kubernetes_host, kubernetes_ca_cert=settings.kubernetes_ca_cert_file,
    token_reviewer_jwt=settings.token_reviewer_jwt))

pulumi.export("policies", sorted(desired["policies"]))
pulumi.export("mounts", [mount["path"] for mount in desired["mounts"]])
pulumi.export("authMounts", [auth["path"] for auth in desired["auth"]])
