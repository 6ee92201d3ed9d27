# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_databases
short_description: The database secrets engine of an environment -- connections and the apps' roles (vault/ data)
version_added: "0.2.0"
description:
  - Loads C(database) of C(environments/<env>.yml) and the apps' C(database) roles the way C(vault_config) does and
    returns C(mount), C(default_ttl), C(max_ttl), C(root_rotation) (seconds), C(connections) (name, plugin,
    C(connection_url), C(username), C(allowed_roles), C(admin_secret)) and C(roles) (name, app, connection, access,
    statements, TTLs, C(lease_prefix)); C(none) when the environment declares no database.
  - Holds names, statements and references only, never a credential.
author: heracles.secrets contributors (!UNKNOWN)
positional: environment
seealso:
  - plugin: heracles.secrets.vault_database_roles
    plugin_type: filter
  - plugin: heracles.secrets.vault_config
    plugin_type: filter
extends_documentation_fragment:
  - heracles.secrets.vault_data
  - heracles.secrets.vault_data.environment
"""

EXAMPLES = r"""
- name: The lease prefixes of the payments app in prod
  ansible.builtin.debug:
    msg: "{{ (databases.roles | selectattr('app', 'equalto', 'payments') | map(attribute='lease_prefix')) }}"
  vars:
    databases: "{{ (playbook_dir ~ '/../vault') | heracles.secrets.vault_databases('prod') }}"
"""

RETURN = r"""
_value:
  description: The environment's database engine (C(vault_data.load_databases)), or C(none).
  type: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import load_databases
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_databases(data_dir, environment):
    return read_data(load_databases, data_dir, environment)


class FilterModule(object):
    def filters(self):
        return {"vault_databases": vault_databases}
