"""roles/envelope_encryption finds what pulumi/platform registers, per stack.

The role's defaults derive the cluster, region, Secrets key alias and KMS v2 provider name from the environment's
deployment facts (heracles_deployment, as the inventories load it). This renders those defaults for each stack and
compares them with what the platform program registers under mocks: the alias of the key the EKS cluster's
encryptionConfig uses, and the kms provider of the self-managed EncryptionConfiguration.
"""

import os

import jinja2
import yaml

import harness
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from runs import platform

DEFAULTS = os.path.join(harness.REPO_ROOT, "roles", "envelope_encryption", "defaults", "main.yml")


def role_defaults(deployment):
    """The role's defaults as Ansible would render them for an inventory with this heracles_deployment."""
    with open(DEFAULTS) as handle:
        raw = yaml.safe_load(handle)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    values = dict(heracles_deployment=deployment)
    for name in ("envelope_encryption_cluster_name", "envelope_encryption_aws_region",
                 "envelope_encryption_kms_key", "envelope_encryption_kms_provider_name"):
        values[name] = env.from_string(raw[name]).render(**values)
    return values


def test_role_defaults_name_the_stacks_key_and_kms_provider(stack):
    run = platform(stack)
    config = dict((key.split(":", 1)[1], value) for key, value in run.config.items() if ":" in key)
    deployment = vault_data.load_deployment(os.path.join(harness.REPO_ROOT, "vault"), config["environment"])
    defaults = role_defaults(deployment)
    assert defaults["envelope_encryption_cluster_name"] == config["clusterName"]
    assert defaults["envelope_encryption_aws_region"] == run.config["aws:region"]

    key_arn = run.one("aws:eks/cluster:Cluster").inputs["encryptionConfig"]["provider"]["keyArn"]
    aliases = [a.inputs["name"] for a in run.of_type("aws:kms/alias:Alias")
               if a.inputs["targetKeyId"] in (key_arn, key_arn.rsplit("/", 1)[1])]
    assert aliases == [defaults["envelope_encryption_kms_key"]]

    document = yaml.safe_load(platform(stack, "self-managed").outputs["encryptionConfiguration"])
    providers = [p["kms"]["name"] for p in document["resources"][0]["providers"] if "kms" in p]
    assert providers == [defaults["envelope_encryption_kms_provider_name"]]
