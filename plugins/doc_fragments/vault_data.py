# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The arguments of the filters that read the vault/ data (plugins/module_utils/vault_data.py)."""

    DOCUMENTATION = r"""
options:
  _input:
    description: The data directory, usually C(vault/) at the repository root.
    type: path
    required: true
"""

    ENVIRONMENT = r"""
options:
  environment:
    description: The environment, for example V(dev); one of the files in C(vault/environments/).
    type: str
    required: true
"""
