# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_config
short_description: Read the declared Vault configuration (vault/) into the objects to apply
version_added: "0.1.0"
description:
  - Loads C(common.yml), C(environments/<env>.yml) and the policy templates under a data directory and returns
    C(password_policies), C(policies) (rendered HCL by name), C(mounts), C(auth) (Kubernetes mounts with roles) and
    C(audit). The pulumi-vault project reads the same data with the same code.
author: heracles.secrets contributors (!UNKNOWN)
positional: environments
options:
  environments:
    description: Environments to load, for example C([dev, staging, prod]).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - heracles.secrets.vault_data
"""

EXAMPLES = r"""
- name: What configure would apply for dev
  ansible.builtin.debug:
    var: "'vault' | heracles.secrets.vault_config(['dev'])"
"""

RETURN = r"""
_value:
  description: The objects to apply.
  type: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import load
from ansible_collections.heracles.secrets.plugins.plugin_utils.vault_data_filter import read_data


def vault_config(data_dir, environments):
    return read_data(load, data_dir, environments)


class FilterModule(object):
    def filters(self):
        return {"vault_config": vault_config}
