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


def deployment(settings, region=None):
    """The stack's deployment facts (vault/environments/<env>.yml ``deployment``), checked against the stack.

    ``clusterName`` and ``aws:region`` stay in the stack file (the AWS provider reads the region before the program
    runs); everything else (bucket, keys, endpoint, schedules) is read from the data only. A disagreement stops
    the program, naming both files.
    """
    facts = vaultdata.loader().load_deployment(vaultdata.data_dir(settings.vault_data_dir), settings.environment)
    where = "vault/environments/%s.yml deployment" % settings.environment
    if facts["cluster_name"] != settings.cluster_name:
        raise ValueError("%s names cluster %r, Pulumi.%s.yaml clusterName %r: make them equal"
                         % (where, facts["cluster_name"], settings.environment, settings.cluster_name))
    if region is not None and facts["region"] != region:
        raise ValueError("%s names region %r, Pulumi.%s.yaml aws:region %r: make them equal"
                         % (where, facts["region"], settings.environment, region))
    return facts


def server_spec(settings, region, desired, external_hostnames=()):
    return ServerSpec(
        flavour=settings.vault_flavour, release=settings.vault_release_name, namespace=settings.vault_namespace,
        cluster_name=settings.cluster_name, kms_region=region, raft_join=settings.vault_raft_join,
        log_level=settings.vault_log_level, metrics=settings.monitoring,
        external_hostnames=tuple(external_hostnames),
        audit_devices=tuple(AuditDevice(d["path"], d["type"], d["description"], tuple(sorted(d["options"].items())))
                            for d in desired["audit"]))


def delivery_objects(settings, server, workloads):
    """Every workload-delivery object of the stack (``heracles_pulumi.delivery.render``)."""
    spec = delivery.spec_from_settings(settings, server, backup_cronjob_name(settings.cluster_name),
                                       deployment(settings)["backup"]["schedule"])
    return delivery.render(workloads, spec)
