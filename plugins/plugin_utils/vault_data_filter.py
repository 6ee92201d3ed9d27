# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every filter over the vault/ data shares: a bad declaration becomes a filter error naming the directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import VaultDataError


def read_data(loader, data_dir, *args):
    """``loader(data_dir, *args)`` (a vault_data function), its VaultDataError raised as an AnsibleFilterError."""
    try:
        return loader(data_dir, *args)
    except VaultDataError as exc:
        raise AnsibleFilterError("vault data in %s: %s" % (data_dir, exc))
