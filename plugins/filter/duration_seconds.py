# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: duration_seconds
short_description: A Vault/Go duration (C(90s), C(1h30m), C(7d)) as seconds
version_added: "0.1.0"
description:
  - Parses durations the way the collection's modules compare them (C(plugins/module_utils/durations.py)).
author: heracles.secrets contributors (!UNKNOWN)
options:
  _input:
    description: The duration; a number is taken as seconds, an empty string as 0.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Seconds in a day
  ansible.builtin.debug:
    msg: "{{ '1d' | heracles.secrets.duration_seconds }}"
"""

RETURN = r"""
_value:
  description: Seconds.
  type: float
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration


def duration_seconds(value):
    if value in (None, ""):
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"duration_seconds": duration_seconds}
