# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_deployment
short_description: Read an environment's deployment facts (vault/environments/<env>.yml deployment)
version_added: "0.2.0"
description:
  - Returns the checked C(deployment) block of C(environments/<env>.yml) under a data directory. It holds the cluster
    name, the region, the Vault endpoint (C(vault.address) derived from hostname and port), the CA file, the audit
    path, the init store (C(kms_key_id) derived as C(alias/<kms_alias>)) and the backup bucket, prefix, key, schedule
    and retention.
  - The one place these facts are declared; pulumi/platform and pulumi/vault read the same block with the same loader,
    so the inventories cannot name another bucket or key than the stacks create.
author: heracles.secrets contributors (!UNKNOWN)
positional: environment
extends_documentation_fragment:
  - heracles.secrets.vault_data
  - heracles.secrets.vault_data.environment
"""

EXAMPLES = r"""
- name: Where dev's snapshots go
  ansible.builtin.debug:
    msg: "{{ ('vault' | heracles.secrets.vault_deployment('dev')).backup.bucket }}"
"""

RETURN = r"""
_value:
  description: The deployment facts with C(vault.address) and the C(kms_key_id)s added.
  type: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import load_deployment
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_deployment(data_dir, environment):
    return read_data(load_deployment, data_dir, environment)


class FilterModule(object):
    def filters(self):
        return {"vault_deployment": vault_deployment}
