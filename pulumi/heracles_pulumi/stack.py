"""What a platform stack deploys, computed from its settings without the Pulumi engine.

``pulumi/platform/__main__.py`` and ``pulumi/manifests.py`` (``make manifests``) both call these, so the
objects a stack applies and the YAML a GitOps user commits come from one computation.
"""

from heracles_pulumi import delivery, vaultdata
from heracles_pulumi.server_config import AuditDevice, ServerSpec


def backup_cronjob_name(cluster_name):
    return "%s-raft-snapshot" % cluster_name


def declared(settings):
    """``(desired Vault objects, workloads)`` of the stack's environment, from vault/ (checked, or VaultDataError)."""
    loader = vaultdata.loader()
    data_dir = vaultdata.data_dir(settings.vault_data_dir)
    return (loader.load(data_dir, [settings.environment]), loader.load_workloads(data_dir, settings.environment))


def server_spec(settings, region, desired):
    return ServerSpec(
        flavour=settings.vault_flavour, release=settings.vault_release_name, namespace=settings.vault_namespace,
        cluster_name=settings.cluster_name, kms_region=region, raft_join=settings.vault_raft_join,
        log_level=settings.vault_log_level, metrics=settings.monitoring,
        audit_devices=tuple(AuditDevice(d["path"], d["type"], d["description"], tuple(sorted(d["options"].items())))
                            for d in desired["audit"]))


def delivery_objects(settings, server, workloads):
    """Every workload-delivery object of the stack (``heracles_pulumi.delivery.render``)."""
    spec = delivery.spec_from_settings(settings, server, backup_cronjob_name(settings.cluster_name))
    return delivery.render(workloads, spec)
