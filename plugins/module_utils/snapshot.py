# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raft snapshot files: streamed save, verification, metadata.

A snapshot (``GET /v1/sys/storage/raft/snapshot``) is a tar.gz with ``meta.json``,
``state.bin``, ``SHA256SUMS`` and ``SHA256SUMS.sealed``.  We verify the archive's own
sums, refuse anything after the end of the compressed archive, and keep a ``<file>.sha256``
sidecar (sha256sum format) of the whole file.  The archive's sums and the sidecar catch
accidents only: whoever can change the file can recompute them.  What catches a deliberate
change is the signature beside it (``snapshot_signing.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tarfile
import tempfile
import threading
import time
import zlib

try:
    import queue
except ImportError:  # Python 2 (ansible-test compile checks only)
    import Queue as queue  # noqa: N813

try:
    # ISA-L's inflate is about twice as fast as zlib's, and decompression is what a snapshot check spends its
    # time on. Optional (requirements.txt installs it); zlib does the same job without it.
    from isal import isal_zlib as inflate_lib
except ImportError:
    inflate_lib = zlib

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


def _check_archive(archive, label):
    """Hash every member of an open tar archive, check them against its SHA256SUMS; return meta.json."""
    sums, actual, meta = {}, {}, None
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
    missing = [name for name in REQUIRED if name not in actual]
    if missing:
        raise SnapshotError("%s is not a raft snapshot (missing %s)" % (label, ", ".join(missing)),
                            "Point path at a file written by vault_raft_snapshot or 'bao operator raft snapshot save'")
    unlisted = [name for name in REQUIRED if name != "SHA256SUMS" and name not in sums]
    if unlisted:
        raise SnapshotError("snapshot %s is corrupt: its SHA256SUMS lists no sum for %s" % (label, ", ".join(unlisted)),
                            "Do not restore it; use an older backup")
    for name, expected in sums.items():
        if name in actual and actual[name] != expected:
            raise SnapshotError("snapshot %s is corrupt: %s does not match its SHA256SUMS entry" % (label, name),
                                "Do not restore it; use an older backup")
    return meta or {}


CORRUPT = (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError, zlib.error)


class _Gunzip(object):
    """The decompressed bytes of a gzip stream read from ``source``; tarfile reads them as a plain tar stream."""

    def __init__(self, source):
        self.source = source
        self.inflate = inflate_lib.decompressobj(31)  # 31: expect a gzip header and trailer
        self.buf, self.pending, self.done = bytearray(), b"", False
        self.trailing = 0  # bytes after the gzip trailer: a snapshot has none

    def _fill(self):
        if not self.pending:
            self.pending = self.source.read(CHUNK)
            if not self.pending:
                if not self.inflate.eof:
                    raise EOFError("the compressed stream ends before its end marker")
                self.done = True
                return
        # Bounded output per step: a highly compressible state.bin must not balloon in memory.
        try:
            self.buf += self.inflate.decompress(self.pending, 4 * CHUNK)
        except Exception as exc:  # noqa: BLE001 - zlib.error or isal's IsalError: both mean corrupt data
            raise ValueError("corrupt compressed data (%s)" % exc)
        self.pending = self.inflate.unconsumed_tail
        if self.inflate.eof:
            # The archive ended: count (and consume) whatever follows it, so the caller can refuse it.
            self.trailing += len(self.inflate.unused_data) + len(self.pending)
            self.pending = b""
            for block in iter(lambda: self.source.read(CHUNK), b""):
                self.trailing += len(block)
            self.done = True

    def read(self, size=-1):
        while not self.done and (size < 0 or len(self.buf) < size):
            self._fill()
        size = len(self.buf) if size < 0 else min(size, len(self.buf))
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out


def _finish(gz, label):
    """After the tar end marker: only zero padding may remain inside the archive, and nothing after it."""
    for block in iter(lambda: gz.read(CHUNK), b""):
        if block.strip(b"\0"):
            raise SnapshotError("snapshot %s has data after the end of its tar archive" % label,
                                "It was altered after it was written; do not restore it, use another backup")
    if gz.trailing:
        raise SnapshotError("snapshot %s has %d bytes appended after the end of the compressed archive"
                            % (label, gz.trailing),
                            "It was altered after it was written; do not restore it, use another backup")


def _corrupt(label, exc):
    return SnapshotError("snapshot %s is truncated or corrupt (%s)" % (label, exc),
                         "Do not restore it; use an older backup or take a new snapshot")


def _facts(path, size, digest, meta):
    return dict(path=path, size=size, sha256=digest, index=meta.get("Index"), term=meta.get("Term"),
                snapshot_id=meta.get("ID"), version=meta.get("Version"))


def inspect(path):
    """Verify ``path`` and return its facts; raise SnapshotError with the reason otherwise."""
    if not os.path.isfile(path):
        raise SnapshotError("snapshot %s does not exist" % path, "Check the path, or list the available backups")
    size = os.path.getsize(path)
    if size == 0:
        raise SnapshotError("snapshot %s is empty" % path, "Take a new snapshot; this file is useless")
    try:
        with open(path, "rb") as handle:
            gz = _Gunzip(handle)
            with tarfile.open(fileobj=gz, mode="r|", bufsize=CHUNK) as archive:
                meta = _check_archive(archive, path)
            _finish(gz, path)
    except CORRUPT as exc:
        raise _corrupt(path, exc)
    digest = file_sha256(path)
    if os.path.exists(sidecar(path)):
        with open(sidecar(path)) as handle:
            recorded = (handle.read().split() or [""])[0]
        if recorded != digest:
            raise SnapshotError("snapshot %s does not match its recorded checksum %s" % (path, sidecar(path)),
                                "The file changed after it was saved; do not restore it")
    return _facts(path, size, digest, meta)


class _Pipe(object):
    """A read-only file whose bytes another thread feeds in blocks (``None`` ends it)."""

    def __init__(self):
        self.blocks = queue.Queue(maxsize=8)  # bounded: at most ~8 MB in memory whatever the snapshot size
        self.current, self.pos, self.eof = b"", 0, False

    def feed(self, block):
        self.blocks.put(block)

    def read(self, size=-1):
        parts = []
        while size != 0 and not self.eof:
            if self.pos >= len(self.current):
                block = self.blocks.get()
                if block is None:
                    self.eof = True
                    break
                self.current, self.pos = block, 0
            take = len(self.current) - self.pos if size < 0 else min(size, len(self.current) - self.pos)
            parts.append(self.current[self.pos:self.pos + take])
            self.pos += take
            if size > 0:
                size -= take
        return b"".join(parts)


class _ArchiveChecker(threading.Thread):
    """Checks the archive while it downloads: one pass over the bytes instead of a second read of the file.

    zlib and hashlib release the GIL on large buffers, so on two cores this overlaps with the transfer.
    It always reads its pipe to the end, so the feeding thread never blocks on it.
    """

    def __init__(self, label):
        super(_ArchiveChecker, self).__init__(name="snapshot-check")
        self.daemon = True
        self.pipe, self.label = _Pipe(), label
        self.meta, self.error = None, None

    def run(self):
        try:
            gz = _Gunzip(self.pipe)
            with tarfile.open(fileobj=gz, mode="r|", bufsize=CHUNK) as archive:
                self.meta = _check_archive(archive, self.label)
            _finish(gz, self.label)
        except SnapshotError as exc:
            self.error = exc
        except CORRUPT as exc:
            self.error = _corrupt(self.label, exc)
        finally:
            while self.pipe.read(CHUNK):
                pass

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.meta


def signature_path(path):
    """Where a snapshot's signature lives: ``<file>.sig`` (JSON, see snapshot_signing.py)."""
    return path + ".sig"


def write_private(path, text, mode=0o600):
    """Write ``text`` to ``path`` atomically (temp file + fsync + rename), mode ``mode`` from the start."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_stream(response, path, mode=0o600, sign=None):
    """Write a streamed response to ``path`` atomically (temp file + fsync + rename), verified first.

    ``sign(facts)``, when given, returns the text of the signature file (``<path>.sig``). The side files are
    renamed into place before the snapshot, so a snapshot that can be seen always has them. The temporary
    files are removed on any failure, so nothing that looks complete is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    side_tmp, sig_tmp = tmp + ".sha256", tmp + ".sig"
    started = time.time()
    checker = _ArchiveChecker(path)
    checker.start()
    try:
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for block in response.iter_content(chunk_size=CHUNK):
                    if block:
                        handle.write(block)
                        digest.update(block)
                        checker.pipe.feed(block)
                        size += len(block)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            checker.pipe.feed(None)
        expected = response.headers.get("Content-Length")
        if expected is not None and int(expected) != size:
            checker.join()
            raise SnapshotError("the snapshot stream ended early (%s of %s bytes)" % (size, expected),
                                "The leader probably changed mid-transfer; run again")
        info = _facts(path, size, digest.hexdigest(), checker.result())
        os.chmod(tmp, mode)
        with open(side_tmp, "w") as handle:
            handle.write("%s  %s\n" % (digest.hexdigest(), os.path.basename(path)))
        os.chmod(side_tmp, mode)
        if sign is not None:
            text = sign(info)
            with open(sig_tmp, "w") as handle:
                handle.write(text)
            os.chmod(sig_tmp, mode)
            os.rename(sig_tmp, signature_path(path))
        elif os.path.exists(signature_path(path)):
            os.unlink(signature_path(path))  # an overwritten snapshot must not keep the old file's signature
        os.rename(side_tmp, sidecar(path))
        os.rename(tmp, path)
    except BaseException:
        for leftover in (tmp, side_tmp, sig_tmp):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    info["path"] = path
    info["seconds"] = round(time.time() - started, 3)
    return info
