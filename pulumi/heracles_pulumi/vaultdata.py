"""The declared Vault configuration under ``vault/``, read with the collection's own loader.

``plugins/module_utils/vault_data.py`` is the one loader: the Ansible ``vault_config`` filter and both Pulumi
projects use it. It is imported from the installed collection when that is importable
(``ansible_collections.heracles.secrets``), else straight from this repository's file, so a checkout
without ``make collection`` works too.
"""

import importlib
import importlib.util
import os

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "vault")
_COLLECTION_MODULE = "ansible_collections.heracles.secrets.plugins.module_utils.vault_data"
_FILE = os.path.join(REPO_ROOT, "plugins", "module_utils", "vault_data.py")


def loader():
    """The ``vault_data`` module (``load``, ``load_workloads``, ``environments``, ``VaultDataError``)."""
    try:
        return importlib.import_module(_COLLECTION_MODULE)
    except ImportError:
        spec = importlib.util.spec_from_file_location("heracles_vault_data", _FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def data_dir(configured=""):
    """``configured`` relative to the repository root, or ``vault/`` there."""
    if not configured:
        return DEFAULT_DATA_DIR
    return configured if os.path.isabs(configured) else os.path.join(REPO_ROOT, configured)


def _role_with_policy(desired, environment, policy):
    for auth in desired["auth"]:
        if auth["environment"] != environment:
            continue
        for role in auth["roles"]:
            if policy in role["policies"]:
                return auth, role
    return None, None


def backup_vault_role(desired, environment, namespace):
    """The Kubernetes auth mount and role the raft snapshot job logs in with in ``environment``.

    The job runs in ``namespace`` (Vault's: it mounts Vault's CA secret), so the role must be bound there.
    """
    auth, role = _role_with_policy(desired, environment, "%s-backup" % environment)
    if role is None:
        raise ValueError("vault/environments/%s.yml declares no backup role (backup: namespace, service_account, "
                         "token_ttl, token_max_ttl): the snapshot job could not log in" % environment)
    if role["bound_service_account_namespaces"] != [namespace]:
        raise ValueError("vault/environments/%s.yml binds the backup role to namespace %s, but the snapshot job runs "
                         "in vaultNamespace %r (next to Vault's CA secret): make backup.namespace %r"
                         % (environment, role["bound_service_account_namespaces"], namespace, namespace))
    return auth, role
