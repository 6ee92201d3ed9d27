#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_snapshot_s3
short_description: Ship raft snapshots to S3 with SSE-KMS, list them, and fetch one back
version_added: "0.1.0"
description:
  - V(state=present) uploads O(path) to C(s3://<bucket>/<prefix>/<file name>) with server-side encryption under
    O(kms_key_id) and its sha256 as object metadata. An object with the same name and sha256 is left alone.
  - V(state=fetched) downloads O(key), or the newest snapshot under the prefix with O(latest=true), to O(path)
    (mode 0600, checked against the recorded sha256, renamed into place only when complete).
  - V(state=listed) returns the snapshots under the prefix, newest first.
  - The local file is verified (archive sums and sidecar) before it is uploaded.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_raft_snapshot
  - module: heracles.secrets.vault_snapshot_retention
attributes:
  check_mode:
    support: full
    description: Reads the bucket and reports what would be uploaded or downloaded.
  diff_mode:
    support: none
    description: Nothing textual changes.
options:
  state:
    description: What to do.
    type: str
    default: present
    choices: [present, fetched, listed]
  path:
    description: Local snapshot file (uploaded, or the download destination).
    type: path
  key:
    description: Object key to fetch (O(state=fetched)).
    type: str
  latest:
    description: Fetch the newest snapshot under the prefix.
    type: bool
    default: false
  bucket:
    description: The backup bucket.
    type: str
    required: true
  prefix:
    description: Key prefix, for example C(prod/raft).
    type: str
    default: ""
  kms_key_id:
    description: KMS key for SSE-KMS; the bucket default key when unset.
    type: str
  region:
    description: AWS region.
    type: str
  endpoint_url:
    description: Alternative S3 endpoint (VPC endpoint, or a test server).
    type: str
"""

EXAMPLES = r"""
- name: Ship the snapshot
  heracles.secrets.vault_snapshot_s3:
    path: "{{ snap.path }}"
    bucket: heracles-prod-vault-backups
    prefix: prod/raft
    kms_key_id: alias/heracles-prod-backups

- name: Fetch the newest one for a restore
  heracles.secrets.vault_snapshot_s3:
    state: fetched
    latest: true
    path: /var/tmp/restore.snap
    bucket: heracles-prod-vault-backups
    prefix: prod/raft
"""

RETURN = r"""
key:
  description: Object key uploaded or fetched.
  returned: when state is present or fetched
  type: str
sha256:
  description: sha256 of the file.
  returned: when state is present or fetched
  type: str
objects:
  description: Snapshots under the prefix, newest first (key, size, modified).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.heracles.secrets.plugins.module_utils import backups
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils.errors import join_hint


def listing(store):
    return [dict(key=o["key"], size=o["size"], modified=o["modified"].isoformat()) for o in store.list()]


def run_module():
    spec = dict(
        state=dict(type="str", default="present", choices=["present", "fetched", "listed"]),
        path=dict(type="path"),
        key=dict(type="str", no_log=False),
        latest=dict(type="bool", default=False),
    )
    spec.update(backups.S3_SPEC)
    spec["bucket"] = dict(type="str", required=True)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[("state", "present", ("path",)), ("state", "fetched", ("path",))],
                           mutually_exclusive=[("key", "latest")])
    p = module.params
    try:
        store = backups.S3Store(p["bucket"], p["prefix"], p["kms_key_id"], p["region"], p["endpoint_url"])
        if p["state"] == "listed":
            module.exit_json(changed=False, objects=listing(store))
        if p["state"] == "present":
            info = snap.inspect(p["path"])
            key = store.key(p["path"])
            head = store.head(key)
            same = head is not None and (head.get("Metadata") or {}).get("sha256") == info["sha256"]
            if not same and not module.check_mode:
                store.upload(p["path"], info["sha256"])
            module.exit_json(changed=not same, key=key, sha256=info["sha256"], size=info["size"],
                             objects=listing(store))
        # fetched
        key = p["key"]
        if p["latest"]:
            objects = store.list()
            if not objects:
                module.fail_json(msg="no snapshot under s3://%s/%s; nothing to fetch" % (p["bucket"], store.prefix))
            key = objects[0]["key"]
        if not key:
            module.fail_json(msg="state=fetched needs key or latest=true")
        if module.check_mode:
            module.exit_json(changed=True, key=key, objects=listing(store))
        digest = store.download(key, p["path"])
        snap.inspect(p["path"])
        module.exit_json(changed=True, key=key, sha256=digest, path=p["path"], objects=listing(store))
    except (backups.BackupError, snap.SnapshotError) as exc:
        module.fail_json(msg=join_hint(exc.message, exc.hint), changed=False)


def main():
    run_module()


if __name__ == "__main__":
    main()
