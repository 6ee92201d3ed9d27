#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_raft_snapshot
short_description: Save, verify and restore signed integrated Raft snapshots
version_added: "0.1.0"
description:
  - V(state=saved) streams C(GET /v1/sys/storage/raft/snapshot) from the active node into a temporary file in the
    destination directory, never holding it in memory, verifies it (the archive's own C(SHA256SUMS), nothing after
    the end of the archive, a sha256 of the file), signs it, then renames it into place with mode 0600 beside a
    C(<path>.sha256) sidecar and a C(<path>.sig) signature. A failed or interrupted transfer is retried from the
    start and never leaves a partial file that looks complete.
  - "The signature is an HMAC-SHA256 over the file's sha256 and size, the raft index and term, the id of the cluster
    it was taken from and the time, made with a key that whoever holds the backup bucket does not hold: by default a
    random 256-bit key kept inside the encrypted init material (the ansible-vault file or the Secrets Manager secret
    of O(init_store)), created on the first save; or, with O(signing_kms_key_id), an AWS KMS HMAC key through
    C(kms:GenerateMac) and C(kms:VerifyMac). The archive's sums and the sidecar only catch accidents: whoever can
    change the file can recompute them."
  - V(state=verified) checks an existing file the same way, signature included.
  - V(state=restored) verifies the file and its signature, then streams it to C(POST /v1/sys/storage/raft/snapshot),
    or to C(snapshot-force) with O(force=true) for a snapshot taken on another cluster. A truncated, corrupt,
    extended or unsigned file, or one whose signature does not match, is refused before anything is sent (O(force)
    never overrides that; only O(allow_unsigned) does). When the server refuses the snapshot the message says what is
    known - signed on another cluster (force it with that cluster's init material), signed on this cluster before its
    keys changed, or unsigned (from elsewhere or altered, which cannot be told apart; do not force it).
  - After a restore it waits until the cluster has a leader again, unseals every node with the keys from
    O(restore_init_file) when the data is sealed with another cluster's keys, and with O(adopt_init_material) writes
    that init material into this connection's init store (the replaced one is kept as a C(.bak)), so the runbooks
    that read it keep working. Then it reads back the KV secrets (metadata and current version, up to
    O(verify_limit), an even sample beyond) and fails, naming the paths, when any cannot be read.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_status_info
  - module: heracles.secrets.vault_unseal
  - module: heracles.secrets.vault_snapshot_s3
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description:
      - V(saved) reports whether a file would be written (and a signing key created); V(restored) verifies the file
        and its signature, sends nothing and returns C(msg) "would restore".
  diff_mode:
    support: none
    description: Snapshots are binary; the result carries size, checksum, index, term and the signature's facts instead.
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
    description:
      - With V(restored), restore a snapshot taken on another cluster (C(snapshot-force)).
      - It does not make an unsigned snapshot acceptable; see O(allow_unsigned).
    type: bool
    default: false
  allow_unsigned:
    description:
      - Accept a snapshot without a valid signature (V(verified), V(restored)), or save one unsigned when no signing
        key can be read (V(saved)). Each use prints a warning.
      - An unsigned snapshot cannot be told apart from one that was altered; the read-back after a restore still runs.
    type: bool
    default: false
  rotate_signing_key:
    description:
      - With V(saved), add a new signing key to the init material before signing. Older keys stay in the material, so
        the snapshots they signed stay verifiable.
    type: bool
    default: false
  signing_kms_key_id:
    description:
      - Sign and verify with this AWS KMS HMAC key (key spec C(HMAC_256), usage C(GENERATE_VERIFY_MAC)) instead of
        the key in the init material. The backup job then needs C(kms:GenerateMac), a restore C(kms:VerifyMac).
    type: str
  signing_kms_region:
    description: AWS region of O(signing_kms_key_id); the boto3 default chain applies when unset.
    type: str
  signing_kms_endpoint_url:
    description: Alternative KMS endpoint (VPC endpoint, or a test server).
    type: str
  restore_init_file:
    description:
      - With V(restored) and O(force), the encrypted init file of the cluster the snapshot came from (same password
        options as O(init_file)); its keys unseal the nodes after the restore and its signing keys verify the snapshot.
      - With V(verified), its signing keys verify a snapshot taken on that cluster.
    type: path
  restore_init_file_password_file:
    description: The ansible-vault password file of O(restore_init_file), when it differs from O(init_file_password_file).
    type: path
  adopt_init_material:
    description:
      - After a forced restore with O(restore_init_file), write that init material (re-encrypted) into this
        connection's init store (O(init_file) or the Secrets Manager secret), because the data now belongs to it. The
        replaced material is copied to C(<init_file>.<UTC time>.replaced.bak) (0600; in Secrets Manager it stays as
        C(AWSPREVIOUS)), and its signing keys are kept so the snapshots they signed stay verifiable.
      - Without it the module warns that the connection's init material no longer matches the data.
    type: bool
    default: false
  verify_limit:
    description:
      - After a restore, how many KV secrets to read back (metadata and current version). With more secrets than this,
        an even sample of this many is read. V(0) skips the read-back.
    type: int
    default: 1000
  wait_timeout:
    description: Seconds to wait for a leader (and unsealed nodes) after a restore.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Save a signed snapshot from whichever node leads
  heracles.secrets.vault_raft_snapshot:
    path: /var/backups/vault/raft-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.snap

- name: Verify a snapshot fetched from S3 that was taken on this cluster
  heracles.secrets.vault_raft_snapshot:
    state: verified
    path: /var/tmp/restore.snap

- name: Restore after losing the cluster's data (disaster recovery into a new cluster)
  heracles.secrets.vault_raft_snapshot:
    state: restored
    path: /var/backups/vault/raft-20261123T020000Z.snap
    force: true
    restore_init_file: /secure/old-cluster/init.vault
    adopt_init_material: true
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
signature:
  description:
    - What the signature says. C(status) is C(valid), C(missing), C(invalid), C(unknown_key) or C(malformed);
      C(key_id) names the key (a hash, not the key); when valid, C(cluster_id) is the cluster it was taken on,
      C(signed_at) when, and C(verified_with) which init material or KMS key verified it.
  returned: when a signature was made or checked
  type: dict
  sample: {"status": "valid", "key_id": "hmac-3f1c2a9e0b7d4c55", "alg": "hmac-sha256",
           "cluster_id": "26654b4f-5fbe-0a95-4b1d-db3f17982be7", "signed_at": "2026-11-23T02:00:01Z",
           "verified_with": "/srv/vault/init.vault"}
signing_key:
  description: With V(saved), C(created) or C(would be created) when a new signing key was added to the init material.
  returned: when a signing key was (or would be) created
  type: str
cluster_id:
  description: With V(restored), the id of the cluster restored into, read before the restore.
  returned: when state is restored and the cluster answered
  type: str
init_material:
  description:
    - After a forced restore with O(restore_init_file), which init material matches the data now. C(adopted) says
      whether it was written into this connection's store, C(previous_backup) where the replaced one went,
      C(matches) the location that holds the keys and root token of the restored data.
  returned: when state is restored, force is set and restore_init_file is given
  type: dict
readback:
  description:
    - After a restore, the read-back of the KV secrets. C(secrets) found, C(checked), C(sampled), C(unreadable) (a
      list of C(mount), C(path), C(error); never a value), C(mounts), C(seconds).
  returned: when state is restored and verify_limit is not 0
  type: dict
unreadable:
  description: Paths that could not be read back after the restore (C(mount), C(path), C(error)).
  returned: when a restore left unreadable data
  type: list
  elements: dict
seconds:
  description: Transfer time of a save, or restore time until the cluster had a leader again.
  returned: when state is saved or restored and changed
  type: float
msg:
  description: In check mode with V(restored), what a real run would do.
  returned: when state is restored in check mode
  type: str
"""

import datetime
import os
import time

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod
from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_readback as readback_mod
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_signing as signing
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, join_hint
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

try:
    import hvac.exceptions as hvac_exc
except ImportError:  # pragma: no cover - VaultModule reports it
    hvac_exc = None

# Words OpenBao/Vault use when a snapshot is sealed with other keys than the cluster's current ones.
KEY_REFUSAL = ("keyring", "hash", "different", "sealed", "verif")


def fail_snapshot(module, exc, **result):
    module.fail_json(msg=join_hint(exc.message, exc.hint), changed=False, **result)


def server_text(exc):
    errors = getattr(exc, "errors", None)
    if errors:
        return readback_mod.clean(" ".join(str(e) for e in errors) if isinstance(errors, (list, tuple)) else errors)
    return readback_mod.clean(exc)


def init_mismatch(module, exc):
    """With auth_method=init_file a 403 means: the init material's root token is not valid in this cluster's data.

    Returns ``(message, hint)`` for that case, None for any other error.
    """
    if hvac_exc is None or not isinstance(exc, hvac_exc.Forbidden) or module.params.get("auth_method") != "init_file":
        return None
    try:
        where = keystore.open_store(module.params).location
    except Exception:  # noqa: BLE001 - only for the message
        where = module.params.get("init_file") or module.params.get("aws_secret_name") or "the init store"
    return ("the init material %s does not match this cluster's data: its root token is not valid here (%s)"
            % (where, server_text(exc)),
            "This is what a forced restore of another cluster's snapshot leaves: the data, its keys and its root token "
            "now belong to that cluster's init material. Point init_file (heracles_vault_connection) at that material "
            "(restore.yml writes it in place unless restore_adopt_init_material=false; the replaced file is kept as "
            "<init_file>.<time>.replaced.bak), or use an operator token (auth_method=token). Nothing was changed")


def fail_vault(module, exc, what, **result):
    mismatch = init_mismatch(module, exc)
    if mismatch:
        result.setdefault("changed", False)
        result.update(module.endpoint_info())
        module.fail_json(msg=join_hint(*mismatch), **result)
    module.fail_from(exc, what, **result)


def preflight(module):
    """With auth_method=init_file, check (one ``lookup-self``) that the init material's root token is valid here.

    A forced restore from another cluster leaves this connection's init material behind the data; say so before
    anything else, in check mode too. Other errors are left to the request that follows.
    """
    if module.params.get("auth_method") != "init_file":
        return
    try:
        api.lookup_self(module.client)
    except Exception as exc:  # noqa: BLE001
        if init_mismatch(module, exc):
            fail_vault(module, exc, None)


# -- keys -----------------------------------------------------------------------------------------------------------
def source_params(p):
    """Keystore parameters of restore_init_file (the password file defaults to the connection's)."""
    params = dict(p, init_store="file", init_file=p["restore_init_file"])
    if p["restore_init_file_password_file"]:
        params.update(init_file_password=None, init_file_password_file=p["restore_init_file_password_file"])
    return params


def read_source(module):
    """The init material of restore_init_file, or None when it is not given."""
    p = module.params
    if not p["restore_init_file"]:
        return None
    try:
        return keystore.open_store(source_params(p)).read()
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading restore_init_file (nothing was restored)")


def connection_material(module):
    """``(store, payload, why)``: this connection's init store and material; payload None (and why) when unreadable.

    ``store`` is None only when the store options themselves are missing or wrong.
    """
    try:
        store = keystore.open_store(module.params)
    except Exception as exc:  # noqa: BLE001 - the caller decides whether that is fatal
        return None, None, str(exc)
    try:
        return store, store.read(), None
    except Exception as exc:  # noqa: BLE001
        return store, None, str(exc)


def kms_key(module):
    p = module.params
    if not p["signing_kms_key_id"]:
        return None
    try:
        return signing.KmsMacKey(p["signing_kms_key_id"], p["signing_kms_region"], p["signing_kms_endpoint_url"])
    except signing.SigningError as exc:
        fail_snapshot(module, exc)


def verification_keyring(module, source=None):
    """Every key that may verify: this cluster's init material, restore_init_file's, the KMS key."""
    keyring = signing.Keyring()
    kms = kms_key(module)
    if kms is not None:
        keyring.add(kms)
    dummy, payload, why = connection_material(module)
    if payload is not None:
        keyring.add_material(payload, "this cluster's init material")
    elif kms is None:
        keyring.notes.append("this cluster's init material could not be read: %s" % why)
    if source is not None:
        keyring.add_material(source, "restore_init_file %s" % module.params["restore_init_file"])
    return keyring


def signing_keyring(module, result):
    """The keyring that signs a new snapshot; creates the first key in the init material when there is none.

    Returns None when no key can be had and allow_unsigned is set.
    """
    p = module.params
    keyring = signing.Keyring()
    kms = kms_key(module)
    if kms is not None:
        keyring.add(kms, signing=True)
        return keyring
    store, payload, why = connection_material(module)
    if payload is None:
        if p["allow_unsigned"]:
            module.warn("Saving an UNSIGNED snapshot (allow_unsigned=true): the init material that holds the signing key "
                        "cannot be read (%s). Restores will refuse it unless they allow unsigned snapshots too." % why)
            return None
        module.fail_json(msg="cannot sign the snapshot: the init material that holds the signing key cannot be read "
                             "(%s). Give it (init_file and init_file_password_file, or init_store=aws_secretsmanager "
                             "and aws_secret_name), or sign with a KMS HMAC key (signing_kms_key_id); allow_unsigned=true "
                             "saves an unsigned snapshot, which restores refuse unless they allow it too. Nothing was "
                             "saved" % why, changed=False)
    if p["rotate_signing_key"] or not keystore.signing_keys(payload):
        if module.check_mode:
            result["signing_key"] = "would be created"
            return keyring
        payload = add_signing_key(module, store, payload)
        result["signing_key"] = "created"
    keyring.add_material(payload, store.location, signing=True)
    return keyring


def add_signing_key(module, store, payload):
    """Append a new key to the init material and write it back, unless the material changed meanwhile."""
    new, key_id = keystore.add_signing_key(payload, signing.utc_now())
    try:
        if store.read() != payload:  # a rekey (or another save) wrote it since we read it: do not overwrite that
            raise HeraclesError("the init material %s changed while the signing key was being added" % store.location,
                                "Run again; nothing was changed")
        store.write(new, overwrite=True)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Adding a snapshot signing key to the init material (no snapshot was saved)")
    module.warn("Created snapshot signing key %s in %s. It signs every snapshot from now on; keep that init material "
                "(and its backups): without it no signed snapshot can be verified." % (key_id, store.location))
    return new


def cluster_id(client):
    """``GET /v1/sys/health``'s cluster_id (unauthenticated), or None."""
    try:
        health = api.read_health_status(client)
    except Exception:  # noqa: BLE001 - only for the signature and the messages
        return None
    return health.get("cluster_id") if isinstance(health, dict) else None


# -- saved / verified -----------------------------------------------------------------------------------------------
def checked(module, path, keyring, result):
    """Inspect ``path`` and its signature; fail unless both are good (or allow_unsigned)."""
    try:
        info = snap.inspect(path)
    except snap.SnapshotError as exc:
        fail_snapshot(module, exc)
    verdict = keyring.verify(path, info)
    result.update(info, signature=verdict.result())
    if not verdict.valid:
        message, hint = verdict.error()
        if not module.params["allow_unsigned"]:
            module.fail_json(msg=join_hint(message, hint), changed=False, **result)
        module.warn("Accepted without a valid signature because allow_unsigned=true: %s" % message)
    return info, verdict


def save(module):
    p = module.params
    path = p["path"]
    result = {}
    if os.path.exists(path) and not p["overwrite"]:
        checked(module, path, verification_keyring(module), result)
        module.exit_ok(changed=False, **result)
    preflight(module)
    keyring = signing_keyring(module, result)
    directory = os.path.dirname(os.path.abspath(path))
    if module.check_mode:
        if not os.path.isdir(directory):
            module.warn("%s does not exist yet; a real run needs it (roles/backup creates it)" % directory)
        module.exit_ok(changed=True, path=path, **result)
    if not os.path.isdir(directory):
        module.fail_json(msg="the directory of path does not exist: %s; create it (mode 0700) first" % directory)
    client = module.client
    attempts = max(p["retries"], 0) + 1
    for attempt in range(attempts):
        try:
            response = api.take_raft_snapshot(client)
            try:
                origin = cluster_id(client) if keyring is not None else None
                sign = (lambda facts: keyring.sign(facts, origin)) if keyring is not None else None
                info = snap.save_stream(response, path, sign=sign)
            finally:
                response.close()
            if keyring is not None:
                info["signature"] = keyring.verify(path, info).result()
            info.update(result)
            module.exit_ok(changed=True, **info)
        except signing.SigningError as exc:
            fail_snapshot(module, exc)
        except snap.SnapshotError as exc:
            if attempt + 1 >= attempts:
                fail_snapshot(module, exc)
        except Exception as exc:  # noqa: BLE001 - a stream cut mid-way (leader lost) is retried from the start
            if attempt + 1 >= attempts or init_mismatch(module, exc):
                fail_vault(module, exc, "Saving the raft snapshot (no partial file was left)")
        time.sleep(p["retry_delay"] * (2 ** attempt))
        try:
            api.read_active_node(client)
        except Exception:  # noqa: BLE001 - the next attempt reports it
            pass


# -- restored -------------------------------------------------------------------------------------------------------
def wait_healthy(module, timeout, keys):
    """After a restore: every reachable node unsealed (with ``keys`` if given) and a leader."""
    deadline = time.time() + timeout
    last = "no answer"
    while time.time() < deadline:
        sealed, leader = [], None
        for url in module.node_urls():
            try:
                node = module.node_client(url, retries=0)
                seal = api.read_seal_status(node)
                if seal.get("sealed") and seal.get("initialized"):
                    sealed.append((url, node, seal))
                elif not seal.get("sealed") and api.read_leader_status(node).get("is_self"):
                    leader = url
            except Exception as exc:  # noqa: BLE001 - nodes restart during a restore
                last = str(exc)
        if sealed and keys:
            for url, node, seal in sealed:
                try:
                    if seal.get("progress"):
                        api.submit_unseal_key(node, reset=True)
                    for key in keys[:seal.get("t") or len(keys)]:
                        if not api.submit_unseal_key(node, key=key).get("sealed"):
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


def refusal(module, exc, verdict, target):
    """``(message, hint)`` when the server refused the snapshot, from what the signature tells."""
    p = module.params
    text = server_text(exc)
    keep = "Nothing was restored and the cluster keeps its data"
    if not verdict.valid:
        return ("the cluster refused the snapshot (%s), and the snapshot has no valid signature (%s): it may have been "
                "taken on another cluster, or it may have been altered, and the two cannot be told apart. %s"
                % (text, verdict.status, keep),
                "Do NOT force it: a forced restore of an altered snapshot leaves data that cannot be decrypted. Restore "
                "a signed backup instead")
    if p["force"] or not any(word in text.lower() for word in KEY_REFUSAL):
        return None
    origin = verdict.cluster_id
    signed = "signed with %s by %s" % (verdict.doc.get("key_id"), verdict.key.source)
    if origin and target and origin != target:
        return ("the cluster refused the snapshot (%s): it was taken on another cluster (cluster id %s, this one is %s; "
                "its signature is valid, %s). %s" % (text, origin, target, signed, keep),
                "To replace this cluster's data with it, set force=true and restore_init_file to that cluster's init "
                "material, whose keys unseal the restored data")
    if origin and origin == target:
        return ("the cluster refused the snapshot (%s): it was taken on this cluster (cluster id %s, signature valid, %s) "
                "but is sealed with keys this cluster no longer uses: its unseal keys were rekeyed or its root key "
                "rotated since. %s" % (text, origin, signed, keep),
                "To go back to it, set force=true and restore_init_file to the init material that was current when it "
                "was taken (the <init_file>.<time>.bak that vault_rekey kept)")
    return ("the cluster refused the snapshot (%s): its signature is valid (%s) but names no cluster, so it was taken on "
            "another cluster or on this one before its keys were rekeyed. %s" % (text, signed, keep),
            "To replace this cluster's data with it, set force=true and restore_init_file to the init material whose keys "
            "were current when it was taken")


def backup_replaced(store, when):
    """Keep the material a restore replaces: a 0600 copy of the file; Secrets Manager keeps AWSPREVIOUS itself."""
    if store.kind != "file":
        return "%s (previous version, AWSPREVIOUS)" % store.location
    return store.copy_beside(when, ".replaced.bak")


def same_material(one, other):
    return (one or {}).get("root_token") == (other or {}).get("root_token") and \
        keystore.unseal_keys(one or {}) == keystore.unseal_keys(other or {})


def adopt(module, source, info):
    """After a forced restore: make this connection's init material the one that matches the data."""
    p = module.params
    out = dict(matches="restore_init_file %s" % p["restore_init_file"], adopted=False)
    store, current, dummy = connection_material(module)
    if current is not None and same_material(current, source):
        out.update(matches=store.location, adopted=False, note="already the restored data's material")
        return out
    if not p["adopt_init_material"] or store is None:
        where = store.location if store is not None else "this connection's init store"
        out["note"] = ("%s does NOT match the restored data: point init_file at restore_init_file, or rerun with "
                       "adopt_init_material=true" % where)
        module.warn("The init material %s no longer matches the cluster's data: after this forced restore the data's "
                    "keys and root token are those in restore_init_file %s. Point init_file at it (or restore with "
                    "adopt_init_material=true); unseal-recovery.yml and the other runbooks need it."
                    % (where, p["restore_init_file"]))
        return out
    new = keystore.merge_signing_keys(source, current) if current is not None else dict(source)
    new.update(adopted_at=signing.utc_now(), adopted_from=dict(snapshot_sha256=info["sha256"],
                                                               init_file=p["restore_init_file"]))
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        previous = backup_replaced(store, now) if store.exists() else None
        store.write(new, overwrite=True)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Writing the restored data's init material into %s (the restore itself succeeded: point "
                              "init_file at restore_init_file)" % store.location, changed=True, **info)
    out.update(matches=store.location, adopted=True, previous_backup=previous)
    return out


def read_back(module, leader, source, info, result):
    """Read back the KV secrets after a restore; fail naming the paths that cannot be read."""
    p = module.params
    token = (source or {}).get("root_token") if p["force"] else None
    try:
        client = client_mod.build_client(p, url=leader, login=not token, retries=0)
        if token:
            client.token = token
        report = readback_mod.readback(readback_mod.Reader(client), p["verify_limit"])
    except Exception as exc:  # noqa: BLE001
        mismatch = init_mismatch(module, exc)
        message = mismatch[0] if mismatch else str(exc)
        module.fail_json(msg="the snapshot was restored, but its data could not be read back to check it: %s. Give "
                             "restore_init_file (its root token reads everything) or a token that can read sys/mounts "
                             "and the KV mounts, then run state=restored again or read the secrets by hand; "
                             "verify_limit=0 skips this check" % message, changed=True, **result)
    result["readback"] = report
    if report["unreadable"]:
        module.fail_json(msg="the snapshot %s was restored, but %d of the %d secrets read back cannot be read: %s. The "
                             "snapshot's data is damaged (altered or corrupt) and the cluster serves it now: restore an "
                             "older signed backup (restore.yml -e restore_snapshot=<file>)"
                             % (info["path"], len(report["unreadable"]), report["checked"],
                                readback_mod.describe_unreadable(report)),
                         changed=True, unreadable=report["unreadable"], **result)


def restore(module):
    p = module.params
    try:
        info = snap.inspect(p["path"])
    except snap.SnapshotError as exc:
        fail_snapshot(module, exc)
    source = read_source(module)
    keys = keystore.unseal_keys(source) if source else []
    verdict = verification_keyring(module, source).verify(p["path"], info)
    result = dict(info, signature=verdict.result())
    if not verdict.valid:
        message, hint = verdict.error(restoring=True)
        if not p["allow_unsigned"]:
            module.fail_json(msg=join_hint(message + ". Nothing was restored", hint), changed=False, **result)
        module.warn("Restoring without a valid signature because allow_unsigned=true: %s" % message)
    preflight(module)
    if module.check_mode:
        module.exit_ok(changed=True, msg="would restore %s (%s bytes, raft index %s); check mode sent nothing"
                       % (p["path"], info["size"], info["index"]), **result)
    client = module.client
    target = cluster_id(client)
    result["cluster_id"] = target
    started = time.time()
    try:
        with open(p["path"], "rb") as handle:
            api.restore_raft_snapshot(client, handle, force=p["force"])
    except Exception as exc:  # noqa: BLE001
        if init_mismatch(module, exc):
            fail_vault(module, exc, None, **result)
        explained = refusal(module, exc, verdict, target)
        if explained:
            module.fail_json(msg=join_hint(*explained), changed=False, **result)
        module.fail_from(exc, "Restoring %s (the server rejected it; the cluster keeps its data)" % p["path"], **result)
    try:
        leader = wait_healthy(module, p["wait_timeout"], keys)
    except HeraclesError as exc:
        module.fail_json(msg=str(exc), changed=True, **result)
    result.update(seconds=round(time.time() - started, 2), leader=leader)
    if p["force"] and source is not None:
        result["init_material"] = adopt(module, source, info)
    if p["verify_limit"] > 0:
        read_back(module, leader, source, info, result)
    module.exit_ok(changed=True, **result)


def run_module():
    module = VaultModule(
        argument_spec=dict(
            state=dict(type="str", default="saved", choices=["saved", "verified", "restored"]),
            path=dict(type="path", required=True),
            overwrite=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            allow_unsigned=dict(type="bool", default=False),
            rotate_signing_key=dict(type="bool", default=False, no_log=False),
            signing_kms_key_id=dict(type="str", no_log=False),
            signing_kms_region=dict(type="str"),
            signing_kms_endpoint_url=dict(type="str"),
            restore_init_file=dict(type="path"),
            restore_init_file_password_file=dict(type="path", no_log=False),
            adopt_init_material=dict(type="bool", default=False),
            verify_limit=dict(type="int", default=1000),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    if module.params["verify_limit"] < 0:
        module.fail_json(msg="verify_limit must be 0 (no read-back) or more; nothing was done")
    state = module.params["state"]
    if state == "saved":
        save(module)
    elif state == "verified":
        result = {}
        checked(module, module.params["path"], verification_keyring(module, read_source(module)), result)
        module.exit_ok(changed=False, **result)
    else:
        restore(module)


def main():
    run_module()


if __name__ == "__main__":
    main()
