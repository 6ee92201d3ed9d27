#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_raft_snapshot
short_description: Save, verify and restore integrated Raft snapshots
version_added: "0.1.0"
description:
  - V(state=saved) streams C(GET /v1/sys/storage/raft/snapshot) from the active node into a temporary file in the
    destination directory, never holding it in memory, verifies it (the archive's own C(SHA256SUMS) and a sha256 of
    the file), then renames it into place with mode 0600 and writes a C(<path>.sha256) sidecar. A failed or
    interrupted transfer is retried from the start and never leaves a partial file that looks complete.
  - V(state=verified) checks an existing file the same way.
  - V(state=restored) verifies the file, then streams it to C(POST /v1/sys/storage/raft/snapshot), or to
    C(snapshot-force) with O(force=true) for a snapshot taken on another cluster. A truncated or corrupt file is
    refused before anything is sent; a foreign snapshot without O(force) is refused by the server and the cluster keeps
    its data. Afterwards it waits until the cluster has a leader again and, when the restored data is sealed with
    another cluster's keys, unseals every node with the keys from O(restore_init_file).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_status_info
  - module: heracles.secrets.vault_unseal
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: V(saved) reports whether a file would be written; V(restored) verifies the file and sends nothing.
  diff_mode:
    support: none
    description: Snapshots are binary; the result carries size, checksum, index and term instead.
options:
  state:
    description: What to do with O(path).
    type: str
    default: saved
    choices: [saved, verified, restored]
  path:
    description: The snapshot file.
    type: path
    required: true
  overwrite:
    description: With V(saved), replace an existing file. Without it an existing valid file is kept (C(changed=false)).
    type: bool
    default: false
  force:
    description: With V(restored), restore a snapshot taken on another cluster (C(snapshot-force)).
    type: bool
    default: false
  restore_init_file:
    description:
      - With V(restored) and O(force), the encrypted init file of the cluster the snapshot came from (same password
        options as O(init_file)); its keys unseal the nodes after the restore.
    type: path
  restore_init_file_password_file:
    description: The ansible-vault password file of O(restore_init_file), when it differs from O(init_file_password_file).
    type: path
  wait_timeout:
    description: Seconds to wait for a leader (and unsealed nodes) after a restore.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Save a snapshot from whichever node leads
  heracles.secrets.vault_raft_snapshot:
    path: /var/backups/vault/raft-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.snap

- name: Restore after losing the cluster's data (disaster recovery)
  heracles.secrets.vault_raft_snapshot:
    state: restored
    path: /var/backups/vault/raft-20261123T020000Z.snap
    force: true
    restore_init_file: /secure/old-cluster/init.vault
"""

RETURN = r"""
path:
  description: The snapshot file.
  returned: always
  type: str
size:
  description: Bytes.
  returned: always
  type: int
sha256:
  description: sha256 of the whole file (also in C(<path>.sha256)).
  returned: always
  type: str
index:
  description: Raft index of the snapshot.
  returned: always
  type: int
term:
  description: Raft term of the snapshot.
  returned: always
  type: int
seconds:
  description: Transfer time of a save, or restore time until the cluster had a leader again.
  returned: when state is saved or restored and changed
  type: float
"""

import os
import time

from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, join_hint
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

SNAPSHOT_PATH = "/v1/sys/storage/raft/snapshot"


def fail_snapshot(module, exc, **result):
    module.fail_json(msg=join_hint(exc.message, exc.hint), changed=False, **result)


def save(module):
    p = module.params
    path = p["path"]
    if os.path.exists(path) and not p["overwrite"]:
        try:
            module.exit_ok(changed=False, **snap.inspect(path))
        except snap.SnapshotError as exc:
            fail_snapshot(module, exc)
    directory = os.path.dirname(os.path.abspath(path))
    if module.check_mode:
        if not os.path.isdir(directory):
            module.warn("%s does not exist yet; a real run needs it (roles/backup creates it)" % directory)
        module.exit_ok(changed=True, path=path)
    if not os.path.isdir(directory):
        module.fail_json(msg="the directory of path does not exist: %s; create it (mode 0700) first" % directory)
    client = module.client
    attempts = max(p["retries"], 0) + 1
    for attempt in range(attempts):
        try:
            response = client.adapter.raw_request("GET", SNAPSHOT_PATH, stream=True)
            try:
                info = snap.save_stream(response, path)
            finally:
                response.close()
            module.exit_ok(changed=True, **info)
        except snap.SnapshotError as exc:
            if attempt + 1 >= attempts:
                fail_snapshot(module, exc)
        except Exception as exc:  # noqa: BLE001 - a stream cut mid-way (leader lost) is retried from the start
            if attempt + 1 >= attempts:
                module.fail_from(exc, "Saving the raft snapshot (no partial file was left)")
        time.sleep(p["retry_delay"] * (2 ** attempt))
        try:
            client.adapter.move_to_leader()
        except Exception:  # noqa: BLE001 - the next attempt reports it
            pass


def wait_healthy(module, timeout, keys):
    """After a restore: every reachable node unsealed (with ``keys`` if given) and a leader."""
    deadline = time.time() + timeout
    last = "no answer"
    while time.time() < deadline:
        sealed, leader = [], None
        for url in module.node_urls():
            try:
                node = module.node_client(url, retries=0)
                seal = node.sys.read_seal_status()
                if seal.get("sealed") and seal.get("initialized"):
                    sealed.append((url, node, seal))
                elif not seal.get("sealed") and node.sys.read_leader_status().get("is_self"):
                    leader = url
            except Exception as exc:  # noqa: BLE001 - nodes restart during a restore
                last = str(exc)
        if sealed and keys:
            for url, node, seal in sealed:
                try:
                    if seal.get("progress"):
                        node.sys.submit_unseal_key(reset=True)
                    for key in keys[:seal.get("t") or len(keys)]:
                        if not node.sys.submit_unseal_key(key=key).get("sealed"):
                            break
                except Exception as exc:  # noqa: BLE001 - retried until the deadline
                    last = "unsealing %s: %s" % (url, exc)
        elif sealed and not keys:
            last = "nodes are sealed after the restore: %s" % ", ".join(u for u, _n, _s in sealed)
        if leader and not sealed:
            return leader
        time.sleep(1)
    raise HeraclesError("the cluster did not come back within %ss after the restore (%s)" % (timeout, last),
                        "If the snapshot came from another cluster, pass that cluster's encrypted init file as "
                        "restore_init_file; then run playbooks/unseal-recovery.yml or bootstrap.yml")


def restore(module):
    p = module.params
    try:
        info = snap.inspect(p["path"])
    except snap.SnapshotError as exc:
        fail_snapshot(module, exc)
    keys = []
    if p["restore_init_file"]:
        params = dict(p, init_store="file", init_file=p["restore_init_file"])
        if p["restore_init_file_password_file"]:
            params.update(init_file_password=None, init_file_password_file=p["restore_init_file_password_file"])
        try:
            keys = keystore.unseal_keys(keystore.open_store(params).read())
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Reading restore_init_file (nothing was restored)")
    if module.check_mode:
        module.exit_ok(changed=True, **info)
    client = module.client
    url = SNAPSHOT_PATH + ("-force" if p["force"] else "")
    started = time.time()

    def send():
        with open(p["path"], "rb") as handle:
            # Sent once: a restore is not retried blindly (the body is a stream, and a half-applied
            # restore must be looked at, not repeated).
            return client.adapter.raw_request("POST", url, retry=False, data=handle,
                                              headers={"Content-Type": "application/octet-stream"})

    try:
        send()
    except Exception as exc:  # noqa: BLE001
        text = " ".join(getattr(exc, "errors", None) or [str(exc)])
        if not p["force"] and ("keyring" in text or "hash" in text.lower() or "different" in text or "sealed" in text):
            # The server cannot tell the two apart: both mean "sealed with other keys than this cluster's now".
            module.fail_json(msg="the cluster refused the snapshot: it was taken on another cluster, or on this one "
                                 "before its unseal keys were rekeyed (%s). Nothing was restored and the cluster keeps "
                                 "its data. To replace this cluster's data with it, set force=true and restore_init_file "
                                 "to the init file whose keys were current when it was taken (the source cluster's, or "
                                 "the backup vault_rekey kept beside the init file)" % text,
                             changed=False, **info)
        module.fail_from(exc, "Restoring %s (the server rejected it; the cluster keeps its data)" % p["path"], **info)
    try:
        leader = wait_healthy(module, p["wait_timeout"], keys)
    except HeraclesError as exc:
        module.fail_json(msg=str(exc), changed=True, **info)
    module.exit_ok(changed=True, seconds=round(time.time() - started, 2), leader=leader, **info)


def run_module():
    module = VaultModule(
        argument_spec=dict(
            state=dict(type="str", default="saved", choices=["saved", "verified", "restored"]),
            path=dict(type="path", required=True),
            overwrite=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            restore_init_file=dict(type="path"),
            restore_init_file_password_file=dict(type="path", no_log=False),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    state = module.params["state"]
    if state == "saved":
        save(module)
    elif state == "verified":
        try:
            module.exit_ok(changed=False, **snap.inspect(module.params["path"]))
        except snap.SnapshotError as exc:
            fail_snapshot(module, exc)
    else:
        restore(module)


def main():
    run_module()


if __name__ == "__main__":
    main()
