#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_database_rotate_root
short_description: Rotate database connections' root credentials once per window, or now after a leak
version_added: "0.2.0"
description:
  - For each connection in O(connections) (default every connection of O(mount)), rotates the admin password Vault
    connects with (C(POST /v1/<mount>/rotate-root/<name>)) when the last rotation is older than O(window), or at once
    with O(force=true). Afterwards only Vault knows the new password.
  - The time of the last rotation is kept in the connection's details (C(heracles_root_rotated_at)), written by this
    module and by M(heracles.secrets.vault_database_connection); a connection without it is due.
  - Returns connection names and times, never a password.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_database_connection
  - module: heracles.secrets.vault_revoke
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the connections and reports which are due; rotates nothing.
  diff_mode:
    support: none
    description: The result lists what was rotated.
options:
  mount:
    description: Path of the database secrets engine.
    type: str
    required: true
  connections:
    description: Connections to consider; empty means every connection of the mount.
    type: list
    elements: str
    default: []
  window:
    description: A connection rotated less than this long ago is left alone (C(30d), C(720h)).
    type: str
    default: 30d
  force:
    description: Rotate now whatever the window (a leak, an operator who saw the password).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Monthly root rotation of every prod connection
  heracles.secrets.vault_database_rotate_root:
    mount: database-prod
    window: 30d

- name: After a leak
  heracles.secrets.vault_database_rotate_root:
    mount: database-prod
    connections: [payments]
    force: true
"""

RETURN = r"""
rotated:
  description: Connections rotated (or due, in check mode), with the previous rotation time (C(null) if unknown).
  returned: always
  type: list
  elements: dict
  sample: [{name: payments, previous: "2026-05-01T03:30:00Z"}]
in_window:
  description: Connections rotated within the window, left alone, with their last rotation time.
  returned: always
  type: list
  elements: dict
"""

import datetime
import time

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import database as db
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule


def iso(stamp):
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_rotation(config):
    raw = ((config or {}).get("connection_details") or {}).get(db.ROTATED_AT_KEY)
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            connections=dict(type="list", elements="str", default=[]),
            window=dict(type="str", default="30d"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    mount = p["mount"].strip("/")
    try:
        window = parse_duration(p["window"])
    except ValueError as exc:
        module.fail_json(msg="window: %s; nothing was rotated" % exc)
    client = module.client
    try:
        known = api.list_database_connections(client, mount)
        names = p["connections"] or known
        missing = [n for n in names if n not in known]
        if missing:
            module.fail_json(msg="%s has no connection %s (it has: %s); nothing was rotated"
                                 % (mount, ", ".join(missing), ", ".join(known) or "none"))
        configs = dict((n, api.read_database_connection(client, mount, n)) for n in names)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the connections of %s" % mount)
    now = time.time()
    result = dict(rotated=[], in_window=[])
    for name in names:
        previous = last_rotation(configs[name])
        if not p["force"] and previous is not None and now - previous < window:
            result["in_window"].append(dict(name=name, rotated_at=iso(previous)))
            continue
        if not module.check_mode:
            try:
                api.rotate_database_root_credentials(client, mount, name)
            except Exception as exc:  # noqa: BLE001
                module.fail_from(exc, "Rotating the root credential of %s/config/%s" % (mount, name),
                                 changed=bool(result["rotated"]), **result)
            try:
                db.record_rotation(client, mount, name)
            except Exception as exc:  # noqa: BLE001
                module.warn("%s/%s was rotated but its rotation time could not be recorded (%s): the next run will "
                            "rotate it again" % (mount, name, db.server_text(exc)))
        result["rotated"].append(dict(name=name, previous=iso(previous)))
    module.exit_ok(changed=bool(result["rotated"]), **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
