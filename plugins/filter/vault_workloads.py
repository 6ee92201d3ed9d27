# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_workloads
short_description: What of an environment reaches the pods -- apps, their ExternalSecrets and consumers (vault/ data)
version_added: "0.1.0"
description:
  - Loads C(environments/<env>.yml) (checked against C(seed/<env>.yml)) the way the Pulumi delivery renderer does
    and returns C(environment), C(kv) (the KV mount), C(auth_mount) (the Kubernetes auth mount), C(store_name),
    C(eso), C(backup), C(default_rotation) and C(apps). Each app has C(namespace), C(service_account),
    C(rotation) (per Vault secret C(apps/<app>/<x>), its C(kind) and C(window)) and C(secrets), one ExternalSecret each, with C(data) refs,
    C(refresh_interval) and C(consumers) (C([{kind, name}])).
  - Holds names and mappings only, never secret values.
author: heracles.secrets contributors (!UNKNOWN)
positional: environment
seealso:
  - plugin: heracles.secrets.vault_consumers
    plugin_type: filter
  - plugin: heracles.secrets.vault_environments
    plugin_type: filter
extends_documentation_fragment:
  - heracles.secrets.vault_data
  - heracles.secrets.vault_data.environment
"""

EXAMPLES = r"""
- name: The KV and Kubernetes auth mounts of dev, from the data
  ansible.builtin.debug:
    msg: "{{ declared.kv }} {{ declared.auth_mount }}"
  vars:
    declared: "{{ (playbook_dir ~ '/../vault') | heracles.secrets.vault_workloads('dev') }}"
"""

RETURN = r"""
_value:
  description: The environment's apps as the Kubernetes side needs them (C(vault_data.load_workloads)).
  type: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import load_workloads
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_workloads(data_dir, environment):
    return read_data(load_workloads, data_dir, environment)


class FilterModule(object):
    def filters(self):
        return {"vault_workloads": vault_workloads}
