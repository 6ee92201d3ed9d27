# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_environments
short_description: The environments declared under vault/ (the names of environments/*.yml)
version_added: "0.1.0"
description:
  - Lists C(environments/*.yml) under a data directory, sorted, so runbooks enumerate environments from the data
    instead of keeping a list of their own. Fails when the folder is missing or declares none.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - plugin: heracles.secrets.vault_workloads
    plugin_type: filter
extends_documentation_fragment:
  - heracles.secrets.vault_data
"""

EXAMPLES = r"""
- name: Every declared environment
  ansible.builtin.debug:
    msg: "{{ (playbook_dir ~ '/../vault') | heracles.secrets.vault_environments }}"
"""

RETURN = r"""
_value:
  description: Environment names, sorted.
  type: list
  elements: str
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import environments
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_environments(data_dir):
    return read_data(environments, data_dir)


class FilterModule(object):
    def filters(self):
        return {"vault_environments": vault_environments}
