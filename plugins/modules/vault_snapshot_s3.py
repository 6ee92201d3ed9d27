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
    O(kms_key_id), its sha256 and its signature (C(<path>.sig), base64, metadata key C(heracles-signature)) as object
    metadata. An object with the same name, sha256 and signature is left alone.
  - V(state=fetched) downloads O(key), or the newest snapshot under the prefix with O(latest=true), to O(path)
    (mode 0600, checked against the recorded sha256, renamed into place only when complete) and writes the signature
    from the metadata to C(<path>.sig). This module does not hold the signing keys; the signature is checked by
    M(heracles.secrets.vault_raft_snapshot) (V(verified), V(restored)).
  - V(state=listed) returns the snapshots under the prefix, newest first, and whether each one carries a signature.
  - The local file is verified (archive sums, nothing appended, sidecar) before it is uploaded; an unsigned one is
    uploaded with a warning.
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
signed:
  description: Whether the uploaded or fetched snapshot carries a signature (checked later by vault_raft_snapshot).
  returned: when state is present or fetched
  type: bool
objects:
  description: Snapshots under the prefix, newest first (key, size, modified).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

import os

from ansible_collections.heracles.secrets.plugins.module_utils import backups
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_signing as signing
from ansible_collections.heracles.secrets.plugins.module_utils.errors import join_hint


def listing(store):
    return [dict(key=o["key"], size=o["size"], modified=o["modified"].isoformat()) for o in store.list()]


def local_signature(module, path):
    """The signature beside ``path`` as a metadata value, or None (with a warning) when there is none."""
    sig = snap.signature_path(path)
    if not os.path.exists(sig):
        module.warn("%s has no signature (%s): it is uploaded unsigned, and restores refuse it unless they set "
                    "allow_unsigned" % (path, sig))
        return None
    try:
        with open(sig) as handle:
            return signing.encode_metadata(handle.read())
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="the signature file %s cannot be read (%s); nothing was uploaded" % (sig, exc))


def write_signature(path, value):
    """``<path>.sig`` from an object's signature metadata; a stale one is removed when the object has none."""
    sig = snap.signature_path(path)
    text = signing.decode_metadata(value) if value else None
    if text is None:
        if os.path.exists(sig):
            os.unlink(sig)
        return False
    snap.write_private(sig, text)
    return True


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
            signature = local_signature(module, p["path"])
            key = store.key(p["path"])
            head = store.head(key)
            meta = (head or {}).get("Metadata") or {}
            same = (head is not None and meta.get("sha256") == info["sha256"]
                    and meta.get(backups.SIGNATURE_METADATA) == signature)
            if not same and not module.check_mode:
                store.upload(p["path"], info["sha256"], signature)
            module.exit_json(changed=not same, key=key, sha256=info["sha256"], size=info["size"],
                             signed=signature is not None, objects=listing(store))
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
        digest, signature = store.download(key, p["path"])
        signed = write_signature(p["path"], signature)
        snap.inspect(p["path"])
        if not signed:
            module.warn("s3://%s/%s carries no signature: vault_raft_snapshot refuses to restore it unless allow_unsigned "
                        "is set" % (p["bucket"], key))
        module.exit_json(changed=True, key=key, sha256=digest, path=p["path"], signed=signed, objects=listing(store))
    except (backups.BackupError, snap.SnapshotError) as exc:
        module.fail_json(msg=join_hint(exc.message, exc.hint), changed=False)


def main():
    run_module()


if __name__ == "__main__":
    main()
