#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_kv_metadata_info
short_description: When KV v2 secrets last changed -- versions, times and rotation stamps, never values
version_added: "0.1.0"
description:
  - Reads the KV version 2 metadata (C(GET <mount>/metadata/<path>)) of each path in O(paths) and returns its current
    version, when that version was written (C(created_time)), the metadata's C(updated_time) and the last rotation
    recorded by M(heracles.secrets.vault_kv_rotate) (C(heracles_rotated_at)).
  - C(changed_at) maps each path to the unix second its current value was written (rounded up), the time the
    rollout of a rotation compares ESO's refresh and the workloads' restarts with
    (M(heracles.secrets.eso_rollout)).
  - Secret data is never read; a path that does not exist is listed in C(missing).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_kv_rotate
  - module: heracles.secrets.eso_rollout
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
  - heracles.secrets.attributes.info_module
options:
  mount:
    description: The KV version 2 mount.
    type: str
    required: true
  paths:
    description: Secret paths in the mount (relative, no C(..)).
    type: list
    elements: str
    required: true
  prefix:
    description: Every path must lie under this prefix (for example C(apps)), else the task fails before any read.
    type: str
"""

EXAMPLES = r"""
- name: When did the rotated secrets change
  heracles.secrets.vault_kv_metadata_info:
    mount: kv-prod
    paths: [apps/payments/db, apps/payments/stripe]
  register: kv_times

- name: Roll those changes out to the pods
  heracles.secrets.eso_rollout:
    external_secrets: "{{ consumers.external_secrets }}"
    changed_at: "{{ consumers.changed_at }}"
    workloads: "{{ consumers.workloads }}"
  vars:
    consumers: "{{ declared | heracles.secrets.vault_consumers(kv_times.changed_at) }}"
"""

RETURN = r"""
secrets:
  description: Per existing path, its current version and times.
  returned: always
  type: dict
  sample:
    apps/payments/db:
      current_version: 4
      created_time: "2026-12-07T03:04:05.123456789Z"
      updated_time: "2026-12-07T03:04:05.234567891Z"
      rotated_at: "2026-12-07T03:04:05Z"
      versions: 4
changed_at:
  description: Per existing path, the unix second its current version was written (rounded up).
  returned: always
  type: dict
  sample: {apps/payments/db: 1796612646}
missing:
  description: Paths that do not exist in the mount (or whose every version is deleted or destroyed).
  returned: always
  type: list
  elements: str
  sample: []
"""

import time

from ansible_collections.heracles.secrets.plugins.module_utils import api, kv
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule
from ansible_collections.heracles.secrets.plugins.module_utils.rollout import changed_epoch

ROTATED_AT = "heracles_rotated_at"  # written by vault_kv_rotate


def describe(meta):
    """The times of one secret's metadata, or None when it has no live current version."""
    current = meta.get("current_version") or 0
    version = (meta.get("versions") or {}).get(str(current)) or {}
    if not current or version.get("destroyed") or version.get("deletion_time"):
        return None
    stamp = (meta.get("custom_metadata") or {}).get(ROTATED_AT)
    rotated = None
    if stamp and str(stamp).isdigit():
        rotated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(stamp)))
    return dict(current_version=current, created_time=version.get("created_time"),
                updated_time=meta.get("updated_time"), rotated_at=rotated, versions=len(meta.get("versions") or {}))


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            paths=dict(type="list", elements="str", required=True, no_log=False),
            prefix=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    mount = p["mount"].strip("/")
    if not mount:
        module.fail_json(msg="mount must not be empty. Name the KV version 2 mount, for example kv-dev")
    try:
        paths = []
        for path in p["paths"]:
            clean = kv.normalize_path(path, p["prefix"])
            if clean not in paths:
                paths.append(clean)
    except kv.SeedInputError as exc:
        module.fail_json(msg="%s. Give paths relative to the mount%s; nothing was read"
                             % (exc, " under %s/" % p["prefix"].strip("/") if p["prefix"] else ""))
    client = module.client
    result = dict(changed=False, secrets={}, changed_at={}, missing=[])
    try:
        for path in paths:
            meta = api.read_secret_metadata(client, mount, path)
            info = describe(meta) if meta else None
            if info is None:
                result["missing"].append(path)
                continue
            result["secrets"][path] = info
            result["changed_at"][path] = changed_epoch(info["created_time"])
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading KV metadata in %s" % mount, **result)
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
