# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""After a restore: can the KV secrets be read back?

The server accepts a forced restore of a snapshot whose entries were altered (with ``snapshot-force`` it cannot check
the sealed hash), and a flipped byte in one encrypted entry only shows when that entry is read: ``500 decryption
failed: cipher: message authentication failed``. So every restore ends with a read of the KV mounts' secrets --
metadata and current version -- all of them up to a limit, an even sample beyond it. Only paths and error texts
are kept; values are read and dropped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.heracles.secrets.plugins.module_utils import api

# Errors that a retry does not heal: the entry itself cannot be decrypted or decoded.
PERMANENT = ("decrypt", "authentication failed", "cipher", "failed to decode", "invalid character", "unexpected end")


def clean(text):
    """One line: the server's "1 error occurred: * ..." wrapping and line breaks removed."""
    text = re.sub(r"\d+ errors? occurred:", " ", str(text))
    return " ".join(text.replace("\t* ", " ").replace("\n* ", " ").split()).strip()


def _text(exc):
    errors = getattr(exc, "errors", None)
    if errors:
        text = "; ".join(str(e) for e in errors) if isinstance(errors, (list, tuple)) else str(errors)
    else:
        text = str(exc) or exc.__class__.__name__
    return clean(text)


def _status(exc):
    return getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)


class Reader(object):
    """Reads through an authenticated hvac client pinned to one node; retries what heals by itself."""

    def __init__(self, client, attempts=4, delay=0.5):
        self.client = client
        self.attempts = attempts
        self.delay = delay
        self.requests = 0

    def call(self, request, *args):
        """``request(client, *args)`` (an api.py function); None for 404; raises the last error otherwise."""
        import hvac.exceptions as hvac_exc
        for attempt in range(self.attempts):
            self.requests += 1
            try:
                return request(self.client, *args)
            except hvac_exc.InvalidPath:
                return None
            except Exception as exc:  # noqa: BLE001 - classified below
                text = _text(exc).lower()
                if any(word in text for word in PERMANENT) or isinstance(exc, hvac_exc.Forbidden):
                    raise
                if attempt + 1 >= self.attempts:
                    raise
                time.sleep(self.delay * (attempt + 1))  # a mount still loading, a leader settling
        return None


def kv_mounts(reader):
    """``GET /v1/sys/mounts``: ``[(path, version)]`` of the KV mounts, sorted."""
    table = reader.call(api.list_mounted_secrets_engines) or {}
    out = []
    for path, info in table.items():
        if isinstance(info, dict) and info.get("type") in ("kv", "generic"):
            version = str((info.get("options") or {}).get("version") or "1")
            out.append((path.rstrip("/"), version))
    return sorted(out)


def list_tree(reader, mount, version, problems):
    """Every secret path under a KV mount (``LIST`` folder by folder); unlistable folders go to ``problems``."""
    lister = api.list_secrets if version == "2" else api.list_kv1_secrets
    paths, folders = [], [""]
    while folders:
        folder = folders.pop()
        try:
            keys = reader.call(lister, mount, folder) or []
        except Exception as exc:  # noqa: BLE001 - reported, the rest is still read
            problems.append(dict(mount=mount, path=folder or "/", error="list: " + _text(exc)))
            continue
        for key in keys:
            if key.endswith("/"):
                folders.append(folder + key)
            else:
                paths.append(folder + key)
    return sorted(paths)


def read_secret(reader, mount, version, path):
    """Read one secret's metadata and current version; return the error text, or None when it reads."""
    try:
        if version != "2":
            reader.call(api.read_kv1_secret, mount, path)
            return None
        meta = reader.call(api.read_secret_metadata, mount, path) or {}
        current = str(meta.get("current_version") or "")
        info = (meta.get("versions") or {}).get(current) or {}
        if not current or info.get("destroyed") or info.get("deletion_time"):
            return None  # no live version: the metadata was the whole secret
        reader.call(api.read_secret_version, mount, path)
    except Exception as exc:  # noqa: BLE001 - what cannot be read is the finding
        return _text(exc)
    return None


def sample(items, limit):
    """All of ``items`` up to ``limit``, else ``limit`` of them spread evenly (first and last included)."""
    if limit is None or len(items) <= limit:
        return list(items)
    if limit <= 1:
        return items[:limit]
    step = (len(items) - 1) / float(limit - 1)
    return [items[int(round(i * step))] for i in range(limit)]


def readback(reader, limit):
    """Read back the KV secrets; return the report (counts, the unreadable paths with their errors)."""
    started = time.time()
    problems = []
    mounts = kv_mounts(reader)
    everything = []
    for mount, version in mounts:
        everything.extend((mount, version, path) for path in list_tree(reader, mount, version, problems))
    chosen = sample(everything, limit)
    for mount, version, path in chosen:
        error = read_secret(reader, mount, version, path)
        if error:
            problems.append(dict(mount=mount, path=path, error=error))
    return dict(mounts=["%s (kv v%s)" % m for m in mounts], secrets=len(everything), checked=len(chosen),
                sampled=len(chosen) < len(everything), unreadable=problems, requests=reader.requests,
                seconds=round(time.time() - started, 2))


def describe_unreadable(report, limit=10):
    """``mount/path (error)`` for the first ``limit`` unreadable entries, for a failure message."""
    items = ["%s/%s (%s)" % (p["mount"], p["path"], p["error"]) for p in report["unreadable"][:limit]]
    more = len(report["unreadable"]) - limit
    return "; ".join(items) + (" and %d more (see unreadable)" % more if more > 0 else "")
