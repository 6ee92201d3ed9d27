#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_snapshot_retention
short_description: Keep the last N and/or the recent snapshots, locally and in S3
version_added: "0.1.0"
description:
  - Deletes snapshots beyond the newest O(keep_last), and/or older than O(max_age), in O(directory) (with their
    C(.sha256), C(.sig) and C(.json) side files) and, with O(bucket), under the S3 prefix.
  - The newest snapshot is never deleted, whatever the settings.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_snapshot_s3
attributes:
  check_mode:
    support: full
    description: Lists what would be deleted.
  diff_mode:
    support: none
    description: Nothing textual changes.
options:
  directory:
    description: Local directory of C(*.snap) files.
    type: path
  keep_last:
    description: How many of the newest snapshots to keep.
    type: int
  max_age:
    description: Delete snapshots older than this (C(30d), C(720h)).
    type: str
  bucket:
    description: The backup bucket (remote retention); omit for local only.
    type: str
  prefix:
    description: Key prefix in the bucket.
    type: str
    default: ""
  kms_key_id:
    description: Unused here; accepted so the same S3 settings can be passed to every backup module.
    type: str
  region:
    description: AWS region.
    type: str
  endpoint_url:
    description: Alternative S3 endpoint.
    type: str
"""

EXAMPLES = r"""
- name: Keep a week locally and 30 snapshots in S3
  heracles.secrets.vault_snapshot_retention:
    directory: /var/backups/vault
    max_age: 7d
    keep_last: 30
    bucket: heracles-prod-vault-backups
    prefix: prod/raft
"""

RETURN = r"""
deleted_local:
  description: Local files deleted.
  returned: always
  type: list
  elements: str
deleted_remote:
  description: S3 keys deleted.
  returned: always
  type: list
  elements: str
kept_local:
  description: Local snapshots kept.
  returned: always
  type: int
kept_remote:
  description: S3 snapshots kept.
  returned: always
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.heracles.secrets.plugins.module_utils import backups
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration


def run_module():
    spec = dict(directory=dict(type="path"), keep_last=dict(type="int"), max_age=dict(type="str"))
    spec.update(backups.S3_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[("keep_last", "max_age"), ("directory", "bucket")])
    p = module.params
    if p["keep_last"] is not None and p["keep_last"] < 1:
        module.fail_json(msg="keep_last must be at least 1 (the newest snapshot is never deleted); nothing was deleted")
    if p["max_age"]:
        try:
            parse_duration(p["max_age"])  # checked even when there is nothing to prune yet
        except ValueError as exc:
            module.fail_json(msg="max_age: %s; nothing was deleted" % exc)
    if p["directory"] and not os.path.isdir(p["directory"]):
        module.warn("directory %s does not exist, so no local snapshot was pruned; check backup_dir" % p["directory"])
    result = dict(deleted_local=[], deleted_remote=[], kept_local=0, kept_remote=0)
    try:
        if p["directory"]:
            items = backups.local_snapshots(p["directory"])
            doomed = backups.expired(items, p["keep_last"], p["max_age"])
            result["deleted_local"] = [d["key"] for d in doomed]
            result["kept_local"] = len(items) - len(doomed)
            if not module.check_mode:
                for item in doomed:
                    sides = [item["key"] + suffix for suffix in backups.SIDE_FILES]
                    for path in [item["key"]] + sides + [item["key"][:-len(backups.SUFFIX)] + ".json"]:
                        if os.path.exists(path):
                            os.unlink(path)
        if p["bucket"]:
            store = backups.S3Store(p["bucket"], p["prefix"], None, p["region"], p["endpoint_url"])
            items = store.list()
            doomed = backups.expired(items, p["keep_last"], p["max_age"])
            result["deleted_remote"] = [d["key"] for d in doomed]
            result["kept_remote"] = len(items) - len(doomed)
            if not module.check_mode:
                for item in doomed:
                    store.delete(item["key"])
    except ValueError as exc:
        module.fail_json(msg="max_age: %s" % exc, **result)
    except backups.BackupError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(changed=bool(result["deleted_local"] or result["deleted_remote"]), **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
