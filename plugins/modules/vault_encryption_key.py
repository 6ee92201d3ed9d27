#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_encryption_key
short_description: Rotate Vault's barrier encryption key once per rotation window
version_added: "0.1.0"
description:
  - Reads C(GET /v1/sys/key-status) (term and install time of the active encryption key) and calls
    C(POST /v1/sys/rotate) when the key is older than O(window), or with O(force=true). Old keys stay in the keyring
    so existing data remains readable; new writes use the new key.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_kv_rotate
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the key status and reports whether a rotation is due.
  diff_mode:
    support: none
    description: The result shows the key term before and after.
options:
  window:
    description: Rotate when the active key is at least this old (C(90d)).
    type: str
    default: 90d
  force:
    description: Rotate now whatever the key's age.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Quarterly barrier key rotation
  heracles.secrets.vault_encryption_key:
    window: 90d
"""

RETURN = r"""
term:
  description: Term of the active key after the task.
  returned: always
  type: int
previous_term:
  description: Term before the task.
  returned: always
  type: int
install_time:
  description: When the key that was active before the task was installed.
  returned: always
  type: str
"""

import datetime

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule


def key_status(client):
    """``GET /v1/sys/key-status`` -> (term, install_time as aware datetime, raw string)."""
    data = api.read_key_status(client)
    raw = data.get("install_time") or ""
    text = raw.rstrip("Z").split(".")[0]
    installed = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(data.get("term") or 0), installed, raw


def run_module():
    module = VaultModule(
        argument_spec=dict(window=dict(type="str", default="90d"), force=dict(type="bool", default=False)),
        supports_check_mode=True,
    )
    try:
        window = parse_duration(module.params["window"])
    except ValueError as exc:
        module.fail_json(msg="window: %s" % exc)
    client = module.client
    try:
        term, installed, raw = key_status(client)
        age = (datetime.datetime.now(datetime.timezone.utc) - installed).total_seconds()
        due = module.params["force"] or age >= window
        new_term = term
        if due and not module.check_mode:
            api.rotate_encryption_key(client)
            new_term = key_status(client)[0]
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Rotating the encryption key (needs sudo on sys/rotate)")
    module.exit_ok(changed=bool(due), term=new_term if not module.check_mode else term + (1 if due else 0),
                   previous_term=term, install_time=raw, age_seconds=int(age))


def main():
    run_module()


if __name__ == "__main__":
    main()
