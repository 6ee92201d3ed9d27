"""heracles-secrets policy pack: ``pulumi preview --policy-pack ../policy`` (from pulumi/platform or pulumi/vault).

The CLI runs this directory (``python -m pulumi.policy <engine> <dir>``); ``PolicyPack`` serves the policies of
``heracles_policies`` over gRPC until the CLI stops it. Every violation is MANDATORY: it fails the preview or update.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from heracles_policies import POLICIES

PolicyPack(name="heracles-secrets", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
