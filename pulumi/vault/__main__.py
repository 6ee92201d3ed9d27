"""heracles-vault: Vault's own configuration (mounts, policies, Kubernetes auth, audit) from vault/.

Reads the stack config, the declared data with the collection's loader (the data roles/configure applies) and the
platform stack's outputs (Vault's endpoint, the Kubernetes host), builds the configuration component, exports what it
manages. Run it after playbooks/bootstrap.yml has initialised and unsealed the cluster.
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
from heracles_pulumi.vault_configuration import (  # noqa: E402
    VaultConfiguration, VaultConfigurationArgs, init_store_root_token)

TOKEN_SOURCES = ("env", "init-store")

settings = read_settings(VaultConfigSettings, pulumi.Config())
if settings.vault_token_from not in TOKEN_SOURCES:
    raise ValueError("vaultTokenFrom must be one of %s, got %r" % (", ".join(TOKEN_SOURCES), settings.vault_token_from))
data_dir = vaultdata.data_dir(settings.vault_data_dir)
desired = vaultdata.loader().load(data_dir, [settings.environment])
facts = vaultdata.loader().load_deployment(data_dir, settings.environment)
# OpenBao (>= 2.4) refuses API-created audit devices: the platform declares them in the server config instead.
audit_file_path = "" if get_flavour(settings.vault_flavour).declares_audit else facts["vault"]["audit_file_path"]

platform = pulumi.StackReference(
    settings.platform_stack or "%s/heracles-platform/%s" % (pulumi.get_organization(), pulumi.get_stack()))

token = None  # the provider reads VAULT_TOKEN
if settings.vault_token_from == "init-store":
    token = init_store_root_token(facts["init_store"]["secret_name"])
elif not os.environ.get("VAULT_TOKEN"):
    raise ValueError("no Vault token: export VAULT_TOKEN=<an operator token with the devops policy> "
                     "(or, right after bootstrap.yml only: pulumi config set vaultTokenFrom init-store)")

configuration = VaultConfiguration(f"heracles-{settings.environment}", VaultConfigurationArgs(
    desired=desired, address=platform.require_output("vaultEndpoint"), ca_cert_file=facts["vault"]["ca_cert_file"],
    token=token, audit_file_path=audit_file_path, kubernetes_host=platform.require_output("kubernetesHost")))

pulumi.export("policies", sorted(desired["policies"]))
pulumi.export("mounts", [mount["path"] for mount in desired["mounts"]])
pulumi.export("authMounts", [auth["path"] for auth in desired["auth"]])
