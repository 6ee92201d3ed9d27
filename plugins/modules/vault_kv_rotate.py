#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_kv_rotate
short_description: Rotate KV v2 secret fields with password policies, once per rotation window
version_added: "0.1.0"
description:
  - For each secret in O(secrets), generates new values for the listed fields with their password policies and
    writes a new version (check-and-set on the version read; other fields kept). The previous version stays
    readable as a KV version unless O(destroy_versions) says otherwise.
  - The time of the last rotation is kept in the secret's custom metadata (C(heracles_rotated_at)); a secret rotated
    less than O(window) ago is left alone, so a rerun does not rotate again unless O(force=true).
  - O(destroy_versions) destroys versions permanently after the rotation (V(previous) for the versions before the
    new one, or version numbers) -- the leak-response runbook uses it for leaked versions.
  - Returns paths, fields and version numbers, never values.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_kv_seed
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads metadata and reports which secrets are due; generates and writes nothing.
  diff_mode:
    support: full
    description: Per path, the rotated field names with masked markers.
options:
  mount:
    description: The KV version 2 mount.
    type: str
    required: true
  secrets:
    description:
      - "C({path: {field: password_policy}}): the fields to rotate and the policy that generates each."
      - Every policy named here must exist (checked before the first write).
    type: dict
    required: true
  prefix:
    description:
      - Every path in O(secrets) must lie under this prefix (for example C(apps)), else the task fails with nothing
        rotated. A guard for runbooks whose paths come from operator input (rotate.yml passes C(apps), the prefix
        the seed role writes under), so a wrong path cannot rotate or destroy versions of a secret elsewhere in
        the mount.
    type: str
  window:
    description: A secret rotated less than this long ago is not rotated again (C(30d), C(720h)).
    type: str
    default: 30d
  force:
    description: Rotate even inside the window (on demand, or after a leak).
    type: bool
    default: false
  destroy_versions:
    description:
      - Versions to destroy after rotating. A list of version numbers and/or V(previous) (every version before the new
        one that is not destroyed yet). Destroyed versions cannot be recovered.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Monthly rotation of generated passwords
  heracles.secrets.vault_kv_rotate:
    mount: kv-prod
    secrets:
      apps/payments/db: {password: heracles-strong}
    window: 30d

- name: A leaked password, now
  heracles.secrets.vault_kv_rotate:
    mount: kv-prod
    secrets:
      apps/payments/db: {password: heracles-strong}
    force: true
    destroy_versions: [previous]
"""

RETURN = r"""
rotated:
  description: Secrets rotated, with fields and versions.
  returned: always
  type: list
  elements: dict
  sample: [{path: apps/payments/db, fields: [password], previous_version: 3, version: 4}]
in_window:
  description:
    - Secrets inside their rotation window, with the time they were rotated.
    - "(Not named C(skipped): Ansible would read a non-empty C(skipped) as a skipped task.)"
  returned: always
  type: list
  elements: dict
destroyed:
  description: Versions destroyed, per path.
  returned: always
  type: dict
"""

import time

from ansible_collections.heracles.secrets.plugins.module_utils import api, kv
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

STAMP = "heracles_rotated_at"
FIELDS = "heracles_rotated_fields"


def versions_to_destroy(metadata, new_version, wanted):
    out = set()
    versions = metadata.get("versions") or {}
    for item in wanted:
        if item == "previous":
            out.update(int(v) for v, info in versions.items() if int(v) < new_version and not info.get("destroyed"))
        else:
            number = int(item)
            if number >= new_version:
                raise ValueError("refusing to destroy version %d: it is not older than the new version %d"
                                 % (number, new_version))
            info = versions.get(str(number))
            if info is not None and not info.get("destroyed"):
                out.add(number)
    return sorted(out)


def parse_input(module):
    """(mount, window in seconds, {path: {field: policy}}) from the task; fails before any request."""
    p = module.params
    try:
        window = parse_duration(p["window"])
        for item in p["destroy_versions"]:
            if item != "previous" and not str(item).isdigit():
                raise ValueError("destroy_versions takes version numbers or 'previous', not %r" % item)
        plan = {}
        for path, fields in p["secrets"].items():
            clean = kv.normalize_path(path, p["prefix"])
            if not isinstance(fields, dict) or not fields or not all(isinstance(v, str) and v for v in fields.values()):
                raise ValueError("secrets[%r] must map field names to password policy names" % path)
            plan[clean] = fields
    except (ValueError, kv.SeedInputError) as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)
    return p["mount"].strip("/"), window, plan


def find_due(module, client, mount, plan, window, now, result):
    """[(path, metadata)] of the secrets to rotate now; the others go to ``result["in_window"]``."""
    due = []
    for path in sorted(plan):
        meta = api.read_secret_metadata(client, mount, path)
        if meta is None or not meta.get("current_version"):
            module.fail_json(msg="%s/%s does not exist: seed it first (seed.yml); nothing was rotated" % (mount, path),
                             **result)
        stamp = float((meta.get("custom_metadata") or {}).get(STAMP) or 0)
        if not module.params["force"] and stamp and now - stamp < window:
            result["in_window"].append(dict(path=path, rotated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))))
            continue
        due.append((path, meta))
    return due


def rotate_secret(module, client, mount, path, meta, fields, now, result, diff):
    """New values for ``fields`` of one secret (a cas write), its rotation stamp, old versions destroyed: True."""
    entry = dict(path=path, fields=sorted(fields), previous_version=meta["current_version"])
    diff["before"][path] = dict((f, kv.MASK) for f in fields)
    diff["after"][path] = dict((f, kv.MASK_CHANGED) for f in fields)
    if module.check_mode:
        entry["version"] = None
        result["rotated"].append(entry)
        return True
    current, version = kv.read_secret(client, mount, path)
    desired = dict(current or {})
    for field, policy in fields.items():
        desired[field] = api.generate_password(client, policy)
    entry["version"] = kv.write_secret(client, mount, path, desired, cas=version)
    custom = dict(meta.get("custom_metadata") or {})
    custom.update({STAMP: str(int(now)), FIELDS: ",".join(sorted(fields))})
    api.update_metadata(client, mount, path, custom)
    if module.params["destroy_versions"]:
        refreshed = api.read_secret_metadata(client, mount, path)
        doomed = versions_to_destroy(refreshed, entry["version"], module.params["destroy_versions"])
        if doomed:
            api.destroy_secret_versions(client, mount, path, doomed)
            result["destroyed"][path] = doomed
    result["rotated"].append(entry)
    return True


def plan_destroys(due, wanted, result):
    """Check mode: the versions a real run would destroy after writing version current + 1."""
    for path, meta in due:
        doomed = versions_to_destroy(meta, meta["current_version"] + 1, wanted)
        if doomed:
            result["destroyed"][path] = doomed


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            secrets=dict(type="dict", required=True, no_log=False),
            prefix=dict(type="str"),
            window=dict(type="str", default="30d"),
            force=dict(type="bool", default=False),
            destroy_versions=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    mount, window, plan = parse_input(module)
    client = module.client
    kv.require_password_policies(module, client, plan, "option secrets", "rotated")
    now = time.time()
    result = dict(rotated=[], in_window=[], destroyed={})
    diff = dict(before={}, after={})
    changed = False
    try:
        due = find_due(module, client, mount, plan, window, now, result)
        for path, meta in due:
            changed |= rotate_secret(module, client, mount, path, meta, plan[path], now, result, diff)
        if module.check_mode and p["destroy_versions"]:
            plan_destroys(due, p["destroy_versions"], result)
    except ValueError as exc:
        module.fail_json(msg="%s; the rotation itself was written" % exc, changed=True, **result)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Rotating secrets in %s" % mount, changed=bool(result["rotated"]) and not module.check_mode,
                         **result)
    result["changed"] = changed
    if module._diff:
        result["diff"] = diff
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
