# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_rotation_plan
short_description: Group an environment's generated secret fields by rotation cadence (vault/ data)
version_added: "0.1.0"
description:
  - Each app names the kind of its Vault secrets (C(environments/<env>.yml) C(apps[].rotation)); C(common.yml)
    C(rotation_cadence) gives each kind its window (database 30d, api-key 90d, ...); a secret no app names takes
    C(rotation_cadence.default).
  - Returns one group per window, in the form M(heracles.secrets.vault_kv_rotate) takes (C(secrets), C(window)),
    so each group rotates with its own window.
author: heracles.secrets contributors (!UNKNOWN)
positional: environment, generate
seealso:
  - module: heracles.secrets.vault_kv_rotate
options:
  generate:
    description: "The seed's generated fields, C({path: {field: password_policy}}) (C(seed/<env>.yml) C(generate))."
    type: dict
    required: true
extends_documentation_fragment:
  - heracles.secrets.vault_data
  - heracles.secrets.vault_data.environment
"""

EXAMPLES = r"""
- name: The rotation groups of dev
  ansible.builtin.debug:
    msg: "{{ data_dir | heracles.secrets.vault_rotation_plan('dev', seed.generate) }}"
  vars:
    data_dir: "{{ playbook_dir }}/../vault"
    seed: "{{ lookup('ansible.builtin.file', data_dir ~ '/seed/dev.yml') | from_yaml }}"
"""

RETURN = r"""
_value:
  description: "C([{window, kinds, secrets: {path: {field: policy}}}]), one entry per window."
  type: list
  elements: dict
  sample:
    - window: 30d
      kinds: [cache, database]
      secrets: {apps/orders/db: {password: heracles-strong}}
    - window: 90d
      kinds: [api-key]
      secrets: {apps/payments/stripe: {api_key: heracles-strong}}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import rotation_plan
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_rotation_plan(data_dir, environment, generate):
    if not isinstance(generate, dict):
        raise AnsibleFilterError("vault_rotation_plan: generate must map secret paths to {field: password_policy}, "
                                 "got %s" % type(generate).__name__)
    return read_data(rotation_plan, data_dir, environment, generate)


class FilterModule(object):
    def filters(self):
        return {"vault_rotation_plan": vault_rotation_plan}
