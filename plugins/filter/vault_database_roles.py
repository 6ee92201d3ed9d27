# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_database_roles
short_description: The roles of some database connections, as heracles.secrets.vault_database_roles takes them
version_added: "0.2.0"
description:
  - From one entry of C(vault_config)'s C(databases) (or C(vault_databases)), the roles whose connection is one of
    O(connections), each as C({name, db_name, creation_statements, revocation_statements, renew_statements,
    rollback_statements, default_ttl, max_ttl}).
author: heracles.secrets contributors (!UNKNOWN)
positional: connections
seealso:
  - plugin: heracles.secrets.vault_databases
    plugin_type: filter
options:
  _input:
    description: The database engine of one environment.
    type: dict
    required: true
  connections:
    description: The connections whose roles to return (the ones configured in this run).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The roles of the payments connection of dev
  ansible.builtin.debug:
    msg: "{{ databases | heracles.secrets.vault_database_roles(['payments']) }}"
  vars:
    databases: "{{ (playbook_dir ~ '/../vault') | heracles.secrets.vault_databases('dev') }}"
"""

RETURN = r"""
_value:
  description: The roles, in declaration order.
  type: list
  elements: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import database_roles_of


def vault_database_roles(databases, connections):
    roles = []
    for connection in connections or []:
        roles.extend(database_roles_of(databases or {"roles": []}, connection))
    return roles


class FilterModule(object):
    def filters(self):
        return {"vault_database_roles": vault_database_roles}
