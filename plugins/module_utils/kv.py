# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KV version 2 reads and check-and-set writes, and the planning of a batch seed.

Planning is pure (``plan_secret``) so it is unit-tested without a server;
the I/O functions name the endpoint they call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.heracles.secrets.plugins.module_utils import api

try:
    import hvac.exceptions as hvac_exc
except ImportError:  # pragma: no cover
    hvac_exc = None

MASK = "<redacted>"
MASK_CHANGED = "<redacted, changed>"
MASK_NEW = "<redacted, new>"


class SeedInputError(ValueError):
    """Declared data that cannot be written; raised before any write."""


def normalize_path(path, prefix=None):
    """Validate a secret path (relative, no ``..``) and check it lies under ``prefix``."""
    if not isinstance(path, str) or not path.strip():
        raise SeedInputError("a secret path must be a non-empty string, got %r" % (path,))
    if path.startswith("/") or "\\" in path:
        raise SeedInputError("secret path %r must be relative to the mount (no leading '/')" % path)
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SeedInputError("secret path %r has an empty, '.' or '..' segment" % path)
    clean = posixpath.normpath(path)
    if clean == path:
        clean = path  # the caller's own string, not an equal copy: 100,000 paths are kept once, not twice
    if prefix:
        pre = prefix.strip("/")
        if not (clean == pre or clean.startswith(pre + "/")):
            raise SeedInputError("secret path %r is outside the allowed prefix %r" % (path, prefix))
    return clean


def missing_password_policies(client, names):
    """``GET /v1/sys/policies/password/<name>/generate`` once per name -> the names that do not exist.

    The same read-only call the writers make later, so it needs no capability they do not already need; made
    before the first write, so a misspelt policy fails the task with nothing written. Other errors propagate.
    """
    missing = []
    for name in sorted(set(names)):
        try:
            api.generate_password(client, name)
        except hvac_exc.InvalidPath:
            missing.append(name)
    return missing


def require_password_policies(module, client, spec, option, undone):
    """Fail the task, before anything is written, when ``spec`` ({path: {field: policy}}) names a missing policy.

    ``option`` names the module option in the message, ``undone`` what did not happen ("written", "rotated").
    """
    uses = {}
    for path, fields in sorted(spec.items()):
        for field, policy in sorted(fields.items()):
            uses.setdefault(policy, []).append("%s.%s" % (path, field))
    try:
        missing = missing_password_policies(client, uses)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Checking the password policies named in %s (nothing was %s)" % (option, undone))
    if missing:
        module.fail_json(msg="%s names password policies that do not exist: %s. Create them first (configure.yml "
                             "applies vault/password-policies/*.hcl) or correct the names; nothing was %s"
                             % (option, "; ".join("%s (for %s)" % (name, ", ".join(uses[name])) for name in missing),
                                undone),
                         changed=False)


def read_secret(client, mount, path):
    """``GET /v1/<mount>/data/<path>`` -> (data or None, current_version or 0).

    A soft-deleted or destroyed latest version reads as absent, with its
    version number, so the next write uses the right ``cas``.
    """
    try:
        resp = api.read_secret_version(client, mount, path)
    except hvac_exc.InvalidPath as exc:
        # 404 with metadata means "latest version deleted"; hvac raises on 404 either way.
        body = getattr(exc, "json", None) or {}
        meta = (body.get("data") or {}).get("metadata") or {}
        return None, int(meta.get("version") or 0)
    data = resp.get("data") or {}
    meta = data.get("metadata") or {}
    if meta.get("deletion_time") or meta.get("destroyed"):
        return None, int(meta.get("version") or 0)
    return data.get("data"), int(meta.get("version") or 0)


def write_secret(client, mount, path, data, cas):
    """``POST /v1/<mount>/data/<path>`` with ``options.cas``; returns the new version."""
    return int(api.create_or_update_secret(client, mount, path, data, cas).get("version") or 0)


def delete_secret(client, mount, path):
    """``DELETE /v1/<mount>/metadata/<path>``: every version and the metadata."""
    api.delete_metadata_and_all_versions(client, mount, path)


def list_keys(client, mount, path):
    """``LIST /v1/<mount>/metadata/<path>`` -> the names directly under ``path`` (folders end in ``/``).

    An empty set when nothing is stored there (404). Other errors (403 without ``list``, ...) propagate.
    Soft-deleted and destroyed secrets are listed: their metadata still exists.
    """
    try:
        return set(api.list_secrets(client, mount, path))
    except hvac_exc.InvalidPath:
        return set()


def list_paths(client, mount, prefix=""):
    """All secret paths under ``prefix`` (recursive ``LIST /v1/<mount>/metadata/...``)."""
    out, todo = [], [prefix.strip("/")]
    while todo:
        base = todo.pop()
        try:
            keys = api.list_secrets(client, mount, base)
        except hvac_exc.InvalidPath:
            continue
        for key in keys:
            full = posixpath.join(base, key) if base else key
            if key.endswith("/"):
                todo.append(full.rstrip("/"))
            else:
                out.append(full)
    return sorted(out)


def is_cas_mismatch(exc):
    text = " ".join(str(e) for e in (getattr(exc, "errors", None) or [])).lower()
    return hvac_exc is not None and isinstance(exc, hvac_exc.InvalidRequest) and "check-and-set" in text


def is_own_write(sent, cas, current, version):
    """True when a write of ``sent`` with ``cas`` that met a cas mismatch had in fact landed.

    That happens when the answer to the first attempt was lost (the active node died after committing it) and the
    client sent it again: the second attempt meets the first one's version. The re-read then shows exactly ``sent``
    at version ``cas + 1``. (So would another writer that stored the very same data in between; either way the
    declared data is in place and must not be written again.)
    """
    return current is not None and current == sent and version == cas + 1


def plan_secret(current, declared, mode="merge", generated=None):
    """Return ``(desired, action, diff)`` for one secret.

    ``current`` is the stored mapping or None; ``declared`` the mapping from
    the task; ``generated`` fields whose values come from a password policy
    and are only filled when missing.  ``diff`` uses masks only.
    """
    desired = {}
    if mode == "merge" and current:
        desired.update(current)
    desired.update(declared)
    for field, value in (generated or {}).items():
        if current and field in current:
            desired[field] = current[field]
        elif field not in declared:
            desired[field] = value
    if current is None:
        action = "create"
    elif desired == current:
        action = "unchanged"
    else:
        action = "update"
    before = None if current is None else dict((k, MASK) for k in current)
    after = {}
    for key, value in desired.items():
        if current is None or key not in current:
            after[key] = MASK_NEW
        elif current[key] != value:
            after[key] = MASK_CHANGED
        else:
            after[key] = MASK
    return desired, action, dict(before=before, after=after)
