# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raft snapshot files: streamed save, verification, metadata.

A snapshot (``GET /v1/sys/storage/raft/snapshot``) is a tar.gz with ``meta.json``,
``state.bin``, ``SHA256SUMS`` and ``SHA256SUMS.sealed``.  We verify the archive's own
sums and keep a ``<file>.sha256`` sidecar (sha256sum format) of the whole file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tarfile
import tempfile
import time

CHUNK = 1024 * 1024
REQUIRED = ("meta.json", "state.bin", "SHA256SUMS")


class SnapshotError(Exception):
    """A snapshot file is missing, truncated, corrupt, or not a snapshot."""

    def __init__(self, message, hint=None):
        super(SnapshotError, self).__init__(message)
        self.message = message
        self.hint = hint


def sidecar(path):
    return path + ".sha256"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def inspect(path):
    """Verify ``path`` and return its facts; raise SnapshotError with the reason otherwise."""
    if not os.path.isfile(path):
        raise SnapshotError("snapshot %s does not exist" % path, "Check the path, or list the available backups")
    size = os.path.getsize(path)
    if size == 0:
        raise SnapshotError("snapshot %s is empty" % path, "Take a new snapshot; this file is useless")
    sums, actual, meta = {}, {}, None
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                handle = archive.extractfile(member)
                digest = hashlib.sha256()
                data = b""
                for block in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(block)
                    if member.name in ("SHA256SUMS", "meta.json"):
                        data += block
                actual[member.name] = digest.hexdigest()
                if member.name == "SHA256SUMS":
                    for line in data.decode("utf-8", "replace").splitlines():
                        parts = line.split()
                        if len(parts) == 2:
                            sums[parts[1].lstrip("*")] = parts[0]
                elif member.name == "meta.json":
                    meta = json.loads(data.decode("utf-8"))
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError("snapshot %s is truncated or corrupt (%s)" % (path, exc),
                            "Do not restore it; use an older backup or take a new snapshot")
    missing = [name for name in REQUIRED if name not in actual]
    if missing:
        raise SnapshotError("%s is not a raft snapshot (missing %s)" % (path, ", ".join(missing)),
                            "Point path at a file written by vault_raft_snapshot or 'bao operator raft snapshot save'")
    for name, expected in sums.items():
        if name in actual and actual[name] != expected:
            raise SnapshotError("snapshot %s is corrupt: %s does not match its SHA256SUMS entry" % (path, name),
                                "Do not restore it; use an older backup")
    digest = file_sha256(path)
    if os.path.exists(sidecar(path)):
        with open(sidecar(path)) as handle:
            recorded = (handle.read().split() or [""])[0]
        if recorded != digest:
            raise SnapshotError("snapshot %s does not match its recorded checksum %s" % (path, sidecar(path)),
                                "The file changed after it was saved; do not restore it")
    meta = meta or {}
    return dict(path=path, size=size, sha256=digest, index=meta.get("Index"), term=meta.get("Term"),
                snapshot_id=meta.get("ID"), version=meta.get("Version"))


def save_stream(response, path, mode=0o600):
    """Write a streamed response to ``path`` atomically (temp file + fsync + rename), verified first.

    The temporary file is removed on any failure, so nothing that looks complete is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    started = time.time()
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle:
            for block in response.iter_content(chunk_size=CHUNK):
                if block:
                    handle.write(block)
                    digest.update(block)
            handle.flush()
            os.fsync(handle.fileno())
        expected = response.headers.get("Content-Length")
        if expected is not None and int(expected) != os.path.getsize(tmp):
            raise SnapshotError("the snapshot stream ended early (%s of %s bytes)" % (os.path.getsize(tmp), expected),
                                "The leader probably changed mid-transfer; run again")
        info = inspect(tmp)
        os.chmod(tmp, mode)
        side_tmp = tmp + ".sha256"
        with open(side_tmp, "w") as handle:
            handle.write("%s  %s\n" % (digest.hexdigest(), os.path.basename(path)))
        os.chmod(side_tmp, mode)
        os.rename(tmp, path)
        os.rename(side_tmp, sidecar(path))
    except BaseException:
        for leftover in (tmp, tmp + ".sha256"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    info["path"] = path
    info["seconds"] = round(time.time() - started, 3)
    return info
