#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_rekey
short_description: Rekey the unseal (or recovery) keys, keeping the new ones encrypted and the old ones as a backup
version_added: "0.1.0"
description:
  - Replaces the Shamir unseal key shares (or, with O(recovery=true), the recovery key shares of an auto-unseal
    cluster) with new ones, optionally with a new number of shares and threshold. The current keys are read from the
    encrypted init material (O(init_store)) that M(heracles.secrets.vault_init) wrote; the new keys are written back
    to the same destination in the same format, encrypted. They are never returned.
  - "The old material is never lost: with O(init_store=file) the encrypted file is first copied to
    C(<init_file>.<UTC time>.bak) (mode 0600, the same ansible-vault password); in AWS Secrets Manager the old material
    stays as the previous version (stage C(AWSPREVIOUS))."
  - "The rekey always uses verification, so the new keys take effect only after they are stored: start with
    C(require_verification=true), submit the current keys (a threshold of them), receive the new keys, store them,
    then submit the new keys to the verification endpoint. Vault switches to them only when they reconstruct the new
    root key, which proves they work without sealing anything. If storing or verifying fails, the rekey is cancelled,
    the old material is put back and the old keys stay valid."
  - "OpenBao 2.4 and later use the authenticated C(sys/rotate/root/*) (C(sys/rotate/recovery/*)) endpoints and need
    a token allowed there (the root token from the init material with O(auth_method=init_file), or an operator token);
    HashiCorp Vault and older OpenBao use C(sys/rekey/*) (C(sys/rekey-recovery-key/*)). O(api=auto) finds out which."
  - A rekey is an action, not a state, so it runs only when it is due -- O(force=true), the material's C(rekeyed_at)
    (or C(created_at)) older than O(max_age), or O(secret_shares)/O(secret_threshold) different from the cluster's --
    and a rerun within O(max_age) reports C(changed=false).
  - A rekey left in progress by someone else is cancelled first. One this module started and stored but did not finish
    verifying (the run was interrupted) is finished with the stored keys.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_init
  - module: heracles.secrets.vault_unseal
  - name: OpenBao root key rotation API
    description: The authenticated rekey endpoints (OpenBao 2.4 and later).
    link: https://openbao.org/api-docs/system/rotate/
  - name: Vault rekey API
    description: C(sys/rekey) endpoints.
    link: https://developer.hashicorp.com/vault/api-docs/system/rekey
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description:
      - Reads the material (proving it decrypts), the seal status and any rekey in progress, and reports whether a rekey
        is due and why. Starts, cancels and writes nothing.
  diff_mode:
    support: none
    description: Returns no diff; shares and threshold before and after are in the result, keys never are.
options:
  secret_shares:
    description: Number of new key shares. Defaults to the cluster's current number.
    type: int
  secret_threshold:
    description: Shares needed to unseal (or to authorise, for recovery keys). Defaults to the current threshold.
    type: int
  recovery:
    description: Rekey the recovery keys of an auto-unseal cluster instead of the unseal keys.
    type: bool
    default: false
  force:
    description: Rekey even when the keys are younger than O(max_age).
    type: bool
    default: false
  max_age:
    description:
      - Rekey when the material's C(rekeyed_at) (or C(created_at)) is older than this (seconds or a duration such as
        C(90d), C(2160h)).
    type: str
    default: 90d
  api:
    description:
      - V(rotate) is OpenBao's authenticated C(sys/rotate/...) API, V(rekey) the C(sys/rekey...) API; V(auto) asks the
        server.
    type: str
    choices: [auto, rotate, rekey]
    default: auto
"""

EXAMPLES = r"""
- name: Rekey the unseal keys when they are older than 90 days (run it from a scheduled rotation playbook)
  heracles.secrets.vault_rekey:
    max_age: 90d
  register: rekey

- name: Rekey now, from 3-of-5 to 4-of-7 shares
  heracles.secrets.vault_rekey:
    url: https://127.0.0.1:8200
    ca_cert: .local/cluster/tls/ca.pem
    auth_method: init_file
    init_file: .local/cluster/init.vault
    init_file_password_file: .local/vault-pass
    secret_shares: 7
    secret_threshold: 4
    force: true

- name: Rekey the recovery keys of an auto-unseal (KMS) cluster kept in Secrets Manager
  heracles.secrets.vault_rekey:
    recovery: true
    force: true
    init_store: aws_secretsmanager
    aws_secret_name: heracles/prod/vault-init
"""

RETURN = r"""
due:
  description: Whether a rekey was due.
  returned: always
  type: bool
  sample: true
reasons:
  description: Why it was due (empty when not).
  returned: always
  type: list
  elements: str
  sample: ["keys are 97 days old (max_age 90d)"]
target:
  description: Which keys, C(unseal) or C(recovery).
  returned: always
  type: str
  sample: unseal
api:
  description: The API used, C(rotate) (sys/rotate/...) or C(rekey) (sys/rekey...); null when nothing was asked.
  returned: always
  type: str
  sample: rotate
shares_before:
  description: Number of shares before the task.
  returned: always
  type: int
  sample: 5
threshold_before:
  description: Threshold before the task.
  returned: always
  type: int
  sample: 3
shares:
  description: Number of shares after the task (or that it would have, in check mode).
  returned: always
  type: int
  sample: 5
threshold:
  description: Threshold after the task.
  returned: always
  type: int
  sample: 3
keys_age_days:
  description: Age of the stored keys before the task, in days (null when the material has no date).
  returned: always
  type: float
  sample: 97.2
rekeyed_at:
  description: UTC time of this rekey (stored in the material as C(rekeyed_at)).
  returned: changed and not check mode
  type: str
  sample: "2026-11-23T10:35:49.461282+00:00"
backup:
  description: Where the old material is, C(<init_file>.<UTC>.bak) or C(secretsmanager:<name> version <id> (AWSPREVIOUS)).
  returned: changed and not check mode
  type: str
  sample: /srv/heracles/init.vault.20261123T103549Z.bak
verified:
  description: The server accepted the new keys on its verification endpoint and switched to them.
  returned: always
  type: bool
  sample: true
cancelled_in_progress:
  description: A rekey someone else had started was cancelled (or would be, in check mode).
  returned: always
  type: bool
  sample: false
resumed:
  description: An interrupted rekey of this module (keys already stored) was finished.
  returned: always
  type: bool
  sample: false
init_store:
  description: Where the encrypted material is.
  returned: always
  type: str
  sample: /srv/heracles/init.vault
"""

import base64
import datetime
import time

from ansible_collections.heracles.secrets.plugins.module_utils import api, keystore
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, describe, join_hint
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

try:
    import hvac.exceptions as hvac_exc
except ImportError:  # pragma: no cover - VaultModule reports the missing library
    hvac_exc = None

MAX_SHARES = 255


class RekeyError(HeraclesError):
    pass


# -- the two APIs (module_utils/api.py) ---------------------------------------------------------
class RekeyApi:
    """The rekey API in use: ``kind`` rotate (``sys/rotate/(root|recovery)/*``, OpenBao >= 2.4, authenticated) or
    rekey (``sys/rekey[-recovery-key]/*``), bound to a client and to the root or recovery keys."""

    def __init__(self, client, kind, recovery):
        self.client = client
        self.kind = kind
        self.recovery = recovery

    def read_progress(self):
        """started, nonce, t, n, progress, required, verification_nonce."""
        return api.read_rekey_progress(self.client, self.kind, recovery=self.recovery)

    def start(self, shares, threshold):
        """Start a rekey that holds the new keys for verification."""
        return api.start_rekey(self.client, self.kind, shares, threshold, recovery=self.recovery)

    def cancel(self):
        """Drop the rekey (and any pending verification); the old keys stay."""
        api.cancel_rekey(self.client, self.kind, recovery=self.recovery)

    def submit(self, key, nonce):
        """One current key share."""
        return api.submit_rekey_key(self.client, self.kind, key, nonce, recovery=self.recovery)

    def read_verification(self):
        """The verification nonce and progress."""
        return api.read_rekey_verify_progress(self.client, self.kind, recovery=self.recovery)

    def verify(self, key, nonce):
        """One new key share."""
        return api.submit_rekey_verify_key(self.client, self.kind, key, nonce, recovery=self.recovery)


def _status(exc):
    return getattr(exc, "status_code", None)


def _errors(exc):
    return "; ".join(str(e) for e in (getattr(exc, "errors", None) or [])) or str(exc)


def _missing(exc):
    return isinstance(exc, hvac_exc.InvalidPath) or _status(exc) == 404


def _disabled(exc):
    return isinstance(exc, hvac_exc.UnsupportedOperation) or _status(exc) == 405


def detect_api(client, recovery, wanted):
    """The API to use, probed with ``GET <base>/init``: the authenticated rotate API when the server has it."""
    name = "recovery" if recovery else "root"
    if wanted in ("auto", "rotate"):
        rotate = RekeyApi(client, "rotate", recovery)
        try:
            rotate.read_progress()
            return rotate
        except Exception as exc:  # noqa: BLE001 - decided below
            if not (_missing(exc) or _disabled(exc)):
                raise
            if wanted == "rotate":
                raise RekeyError("The server has no sys/rotate/%s API (%s)" % (name, _errors(exc)),
                                 "It is HashiCorp Vault or OpenBao before 2.4: use api=rekey (or auto)")
    legacy = RekeyApi(client, "rekey", recovery)
    try:
        legacy.read_progress()
    except Exception as exc:  # noqa: BLE001
        if _disabled(exc) or _missing(exc):
            raise RekeyError("The server refuses the unauthenticated sys/%s API (%s)"
                             % ("rekey-recovery-key" if recovery else "rekey", _errors(exc)),
                             "OpenBao 2.4 and later disable it (listener disable_unauthed_rekey_endpoints): use api=auto "
                             "or rotate, which takes the authenticated sys/rotate/%s endpoints; nothing was changed" % name)
        raise
    return legacy


# -- pure decisions ----------------------------------------------------------------------------
def parse_stamp(value):
    """Epoch seconds of an ISO 8601 time as vault_init writes it, or None."""
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def due_reasons(payload, now, max_age, force, shares, threshold, current_n, current_t, max_age_text):
    """Why a rekey is due (empty list: it is not), and the keys' age in seconds (or None)."""
    reasons = []
    stamp = parse_stamp(payload.get("rekeyed_at") or payload.get("created_at"))
    age = None if stamp is None else now - stamp
    if force:
        reasons.append("force=true")
    if age is None:
        reasons.append("the material records no rekeyed_at/created_at")
    elif age > max_age:
        reasons.append("keys are %d days old (max_age %s)" % (age // 86400, max_age_text))
    if (shares, threshold) != (current_n, current_t):
        reasons.append("shares/threshold %s/%s -> %s/%s" % (current_n, current_t, shares, threshold))
    return reasons, age


def check_new_keys(keys, shares):
    """The new shares must be ``shares`` distinct, decodable base64 strings of one length."""
    if len(keys) != shares:
        raise RekeyError("The server returned %d new key shares, expected %d" % (len(keys), shares),
                         "The rekey was cancelled; the old keys stay valid")
    lengths = set()
    for key in keys:
        try:
            lengths.add(len(base64.b64decode(key, validate=True)))
        except (ValueError, TypeError):
            raise RekeyError("A new key share is not base64", "The rekey was cancelled; the old keys stay valid")
    if len(set(keys)) != len(keys) or len(lengths) != 1 or min(lengths) < 16:
        raise RekeyError("The new key shares are not distinct shares of one key",
                         "The rekey was cancelled; the old keys stay valid")


def new_payload(payload, recovery, keys, shares, threshold, nonce, backup, now_iso):
    """The stored document, as vault_init writes it, with the new keys."""
    out = dict(payload)
    out["recovery_keys_b64" if recovery else "unseal_keys_b64"] = list(keys)
    out["shares"], out["threshold"] = shares, threshold
    out.update(version=keystore.PAYLOAD_VERSION, rekeyed_at=now_iso, rekey_nonce=nonce, previous_backup=backup)
    return out


def updated(result, **changes):
    """A copy of ``result`` with ``changes``."""
    out = dict(result)
    out.update(changes)
    return out


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


# -- the steps ---------------------------------------------------------------------------------
def backup_material(store, payload, when):
    """Keep the old material: a 0600 copy of the encrypted file, or note the Secrets Manager version."""
    if store.kind == "file":
        return store.copy_beside(when, ".bak")
    meta = store.client.describe_secret(SecretId=store.name)
    current = [v for v, stages in (meta.get("VersionIdsToStages") or {}).items() if "AWSCURRENT" in stages]
    return "%s version %s (AWSPREVIOUS after this rekey)" % (store.location, current[0] if current else "?")


def submit_current_keys(rekey, keys, nonce, threshold):
    """Submit a threshold of the current keys; return the completing response (new keys, verification nonce)."""
    resp = {}
    for key in keys[:threshold]:
        try:
            resp = rekey.submit(key, nonce)
        except Exception as exc:  # noqa: BLE001
            if hvac_exc is not None and isinstance(exc, hvac_exc.InvalidRequest):
                raise RekeyError("The server rejected the current keys from the init material (%s)" % _errors(exc),
                                 "The material does not hold this cluster's current keys (another cluster's file, or "
                                 "keys rekeyed elsewhere): point init_file at the right material. The rekey was "
                                 "cancelled; the cluster and its keys are unchanged")
            raise
        if resp.get("complete"):
            return resp
    raise RekeyError("The rekey did not complete after %d key(s)" % threshold,
                     "The material holds fewer keys than the threshold; the rekey was cancelled, nothing changed")


def verify_new_keys(rekey, keys, threshold, nonce=None):
    """Submit a threshold of the new keys to the verification endpoint; True when the server switched to them."""
    if nonce is None:
        nonce = rekey.read_verification().get("nonce")
    for key in keys[:threshold]:
        try:
            resp = rekey.verify(key, nonce)
        except Exception as exc:  # noqa: BLE001
            if hvac_exc is not None and isinstance(exc, hvac_exc.InvalidRequest):
                raise RekeyError("The server did not accept the new keys on verification (%s)" % _errors(exc),
                                 "The rekey was cancelled and the old material put back; the old keys stay valid")
            raise
        if resp.get("complete"):
            return True
    return False


def read_material(module, result):
    """(store, payload, current keys) from the init material; fails when it holds no keys of the wanted kind."""
    p = module.params
    try:
        store = keystore.open_store(p)
        payload = store.read()
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the current keys")
    for warning in store.permission_warnings():
        module.warn(warning)
    keys = list(payload.get("recovery_keys_b64" if p["recovery"] else "unseal_keys_b64") or [])
    result["init_store"] = store.location
    if not keys:
        other = "unseal_keys_b64" if p["recovery"] else "recovery_keys_b64"
        hint = ""
        if payload.get(other):
            hint = " It holds %s keys: set recovery=%s." % ("unseal" if p["recovery"] else "recovery",
                                                            "false" if p["recovery"] else "true")
        module.fail_json(msg="The init material at %s holds no %s keys (PGP-encrypted shares cannot be used).%s "
                             "Nothing was changed" % (store.location, result["target"], hint), **result)
    return store, payload, keys


def read_shape(module, client, keys, result):
    """(shares, threshold) now and wanted, from ``GET sys/seal-status``; fails unless a rekey can run."""
    p = module.params
    try:
        seal = api.read_seal_status(client)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the seal status", **result)
    if not seal.get("initialized") or seal.get("sealed"):
        module.fail_json(msg="The cluster is %s: a rekey needs an initialised, unsealed cluster. Unseal it first "
                             "(playbooks/bootstrap.yml); nothing was changed"
                             % ("not initialised" if not seal.get("initialized") else "sealed"), **result)
    if bool(seal.get("recovery_seal")) != p["recovery"]:
        module.fail_json(msg="The cluster's seal is %s, which has %s keys: set recovery=%s. Nothing was changed"
                             % (seal.get("type"), "recovery" if seal.get("recovery_seal") else "unseal (Shamir)",
                                "true" if seal.get("recovery_seal") else "false"), **result)
    current_n, current_t = seal.get("n"), seal.get("t")
    shares = p["secret_shares"] or current_n
    threshold = p["secret_threshold"] or current_t
    result.update(shares_before=current_n, threshold_before=current_t, shares=shares, threshold=threshold)
    if not (1 <= threshold <= shares <= MAX_SHARES) or (shares > 1 and threshold < 2):
        module.fail_json(msg="secret_threshold must be between 2 and secret_shares (or 1 of 1), and shares at most %d "
                             "(%s of %s); nothing was changed" % (MAX_SHARES, threshold, shares), **result)
    if len(keys) < current_t:
        module.fail_json(msg="The init material holds %d key(s) but the cluster needs %d to rekey; nothing was changed"
                             % (len(keys), current_t), **result)
    return current_n, current_t, shares, threshold


def read_progress(module, client, result):
    """(the rekey API in use, the progress of a rekey in progress if any)."""
    try:
        rekey = detect_api(client, module.params["recovery"], module.params["api"])
        progress = rekey.read_progress()
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the rekey progress", **result)
    result["api"] = rekey.kind
    return rekey, progress


def finish_interrupted(module, rekey, keys, progress, payload, shares, threshold, result):
    """Interrupted after the new keys were stored: the stored keys are the pending ones. Verify them and exit."""
    result.update(due=True, changed=True, resumed=True, reasons=["finishing an interrupted rekey (keys already stored)"])
    if module.check_mode:
        module.exit_ok(**result)
    try:
        result["verified"] = verify_new_keys(rekey, keys, progress.get("t") or threshold)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Verifying the stored keys of the interrupted rekey (the previous material is in %s)"
                         % payload.get("previous_backup"), **result)
    if not result["verified"]:
        module.fail_json(msg="The interrupted rekey did not verify; the previous material is in %s"
                         % payload.get("previous_backup"), **result)
    result.update(shares=progress.get("n") or shares, threshold=progress.get("t") or threshold)
    module.exit_ok(**result)


def abort(module, rekey, store, result, exc, what, restore=None):
    """Cancel the rekey (the old keys stay valid), put the old material back if asked, and fail."""
    notes = []
    try:
        rekey.cancel()
        notes.append("the rekey was cancelled")
    except Exception as cancel_exc:  # noqa: BLE001
        notes.append("cancelling the rekey failed too (%s)" % describe(cancel_exc)[0])
    if restore is not None:
        try:
            store.write(restore, overwrite=True)
            notes.append("the old material was put back")
        except Exception as write_exc:  # noqa: BLE001
            notes.append("putting the old material back failed (%s): restore it from %s"
                         % (describe(write_exc)[0], result.get("backup")))
    message, hint = describe(exc)
    module.fail_json(msg="%s failed: %s. %s; the old keys stay valid"
                     % (what, join_hint(message, hint).rstrip("."), "; ".join(notes).capitalize()),
                     **updated(result, changed=False, verified=False))


def start_rekey(module, store, rekey, in_progress, shares, threshold, result):
    """Cancel a rekey someone else left in progress, start ours; returns its nonce."""
    try:
        store.check_writable()
        if in_progress:
            rekey.cancel()
        started = rekey.start(shares, threshold)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Starting the rekey", **updated(result, changed=in_progress))
    return started.get("nonce")


def new_keys_from_server(module, rekey, store, keys, nonce, current_t, shares, result):
    """Submit the current keys; returns the completing answer and the new keys (checked), or aborts."""
    try:
        done = submit_current_keys(rekey, keys, nonce, current_t)
        new_keys = list(done.get("keys_base64") or [])
        check_new_keys(new_keys, shares)
    except Exception as exc:  # noqa: BLE001
        abort(module, rekey, store, result, exc, "Submitting the current keys")
    if not done.get("verification_required"):
        module.warn("The server did not hold the new keys for verification: they were active before being stored.")
    return done, new_keys


def store_new_keys(module, rekey, store, payload, done, new_keys, shares, threshold, nonce, when, result):
    """Back the old material up, then write the new keys into the init material (before they become active)."""
    try:
        result["backup"] = backup_material(store, payload, when)
        store.write(new_payload(payload, module.params["recovery"], new_keys, shares, threshold, nonce,
                                result["backup"], when.isoformat()), overwrite=True)
    except Exception as exc:  # noqa: BLE001
        if done.get("verification_required"):
            abort(module, rekey, store, result, exc, "Storing the new keys")
        module.fail_from(exc, "Storing the new keys -- they are ACTIVE and were not stored; the old keys no longer "
                              "unseal. Keep this cluster unsealed and rekey again with force=true from the backup %s"
                         % result.get("backup"), **updated(result, changed=True))
    result["rekeyed_at"] = when.isoformat()


def verify_stored_keys(module, rekey, store, payload, done, new_keys, threshold, result):
    """Make the stored new keys active by verifying them; on failure cancel and put the old material back."""
    if not done.get("verification_required"):
        return
    try:
        result["verified"] = verify_new_keys(rekey, new_keys, threshold, done.get("verification_nonce"))
        if not result["verified"]:
            raise RekeyError("The verification did not complete after %d new key(s)" % threshold, None)
    except Exception as exc:  # noqa: BLE001
        abort(module, rekey, store, result, exc, "Verifying the new keys", restore=payload)


def report_shape(module, client, shares, threshold):
    """Warn when ``GET sys/seal-status`` does not show the new shape (the rekey is done; this is only a report)."""
    try:
        after = api.read_seal_status(client)
        if (after.get("n"), after.get("t")) != (shares, threshold):
            module.warn("After the rekey the seal status says %s/%s shares, expected %s/%s"
                        % (after.get("n"), after.get("t"), shares, threshold))
    except Exception as exc:  # noqa: BLE001
        module.warn("Could not read the seal status after the rekey: %s" % describe(exc)[0])


def run_module():
    module = VaultModule(
        argument_spec=dict(
            # Share counts, not secrets.
            secret_shares=dict(type="int", no_log=False),
            secret_threshold=dict(type="int", no_log=False),
            recovery=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            max_age=dict(type="str", default="90d"),
            api=dict(type="str", default="auto", choices=["auto", "rotate", "rekey"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        max_age = parse_duration(p["max_age"])
    except ValueError as exc:
        module.fail_json(msg="max_age: %s" % exc)
    result = dict(changed=False, due=False, reasons=[], target="recovery" if p["recovery"] else "unseal", api=None,
                  verified=False, cancelled_in_progress=False, resumed=False, init_store=None)
    store, payload, keys = read_material(module, result)
    client = module.client
    current_n, current_t, shares, threshold = read_shape(module, client, keys, result)

    reasons, age = due_reasons(payload, time.time(), max_age, p["force"], shares, threshold, current_n, current_t,
                               p["max_age"])
    result["keys_age_days"] = None if age is None else round(age / 86400.0, 1)
    rekey, progress = read_progress(module, client, result)
    in_progress = bool(progress.get("started"))
    if in_progress and bool(progress.get("verification_nonce")) and progress.get("nonce") == payload.get("rekey_nonce"):
        finish_interrupted(module, rekey, keys, progress, payload, shares, threshold, result)
    if not reasons:
        if in_progress:
            module.warn("A rekey someone else started is in progress (nonce %s); it was left alone because no rekey is "
                        "due. Cancel it if it is not expected." % progress.get("nonce"))
        module.exit_ok(**result)
    result.update(due=True, changed=True, reasons=reasons, cancelled_in_progress=in_progress)
    if module.check_mode:
        module.exit_ok(**result)

    when = utc_now()
    nonce = start_rekey(module, store, rekey, in_progress, shares, threshold, result)
    done, new_keys = new_keys_from_server(module, rekey, store, keys, nonce, current_t, shares, result)
    store_new_keys(module, rekey, store, payload, done, new_keys, shares, threshold, nonce, when, result)
    verify_stored_keys(module, rekey, store, payload, done, new_keys, threshold, result)
    report_shape(module, client, shares, threshold)
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
