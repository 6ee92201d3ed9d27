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

try:
    from requests import exceptions as requests_exc
    from urllib3 import exceptions as urllib3_exc
except ImportError:  # pragma: no cover - hvac needs both, and VaultModule reports a missing hvac
    STREAM_ERROR_MAP = ()
else:
    # How requests' iter_content names what urllib3 raises mid-body; read_blocks maps them the same way.
    STREAM_ERROR_MAP = ((urllib3_exc.ProtocolError, requests_exc.ChunkedEncodingError),
                        (urllib3_exc.DecodeError, requests_exc.ContentDecodingError),
                        (urllib3_exc.ReadTimeoutError, requests_exc.ConnectionError),
                        (urllib3_exc.SSLError, requests_exc.SSLError))

CHUNK = 1024 * 1024
# The transfer reads 4 MB at a time: http.client decodes the server's ~32 KB HTTP chunks into one buffer per call,
# so the Python-level work is per 4 MB, and hashlib/zlib/isal release the GIL on blocks that large.
BLOCK = 4 * CHUNK
QUEUE_BLOCKS = 8  # blocks in flight between the transfer and the check: at most ~32 MB of memory
INFLATE_LIMIT = 4 * BLOCK  # bounded output per inflate step: a highly compressible state.bin must not balloon
SYNC_EVERY = 64 * CHUNK  # start writing back to disk while the transfer goes on, so the final fsync has little left
KEEP_LIMIT = CHUNK  # meta.json and SHA256SUMS are a few hundred bytes; a larger one is not a snapshot's
REQUIRED = ("meta.json", "state.bin", "SHA256SUMS")
KEEP = ("meta.json", "SHA256SUMS")


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


def _check_sums(actual, kept, label):
    """Check the members' sha256 against SHA256SUMS; return meta.json."""
    missing = [name for name in REQUIRED if name not in actual]
    if missing:
        raise SnapshotError("%s is not a raft snapshot (missing %s)" % (label, ", ".join(missing)),
                            "Point path at a file written by vault_raft_snapshot or 'bao operator raft snapshot save'")
    sums = {}
    for line in kept["SHA256SUMS"].decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0]
    unlisted = [name for name in REQUIRED if name != "SHA256SUMS" and name not in sums]
    if unlisted:
        raise SnapshotError("snapshot %s is corrupt: its SHA256SUMS lists no sum for %s" % (label, ", ".join(unlisted)),
                            "Do not restore it; use an older backup")
    for name, expected in sums.items():
        if name in actual and actual[name] != expected:
            raise SnapshotError("snapshot %s is corrupt: %s does not match its SHA256SUMS entry" % (label, name),
                                "Do not restore it; use an older backup")
    return json.loads(kept["meta.json"].decode("utf-8"))


CORRUPT = (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError, zlib.error)
PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


def _pax_records(data):
    """``{key: value}`` of a pax extended header's ``"<length> <key>=<value>\\n"`` records."""
    out, pos = {}, 0
    while pos < len(data):
        length = int(data[pos:data.index(b" ", pos)])
        if length <= 0:
            raise tarfile.ReadError("invalid pax header")
        key, dummy, value = data[data.index(b" ", pos) + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class _TarWalk(object):
    """Walks an uncompressed tar stream fed in pieces of any size, without copying member data.

    Hashes every regular member (sha256), keeps meta.json and SHA256SUMS, honours pax and GNU long-name headers
    (Go writes pax for members over 8 GiB), and notes anything but zeros after the end-of-archive block.
    Headers are parsed and checksummed by ``tarfile.TarInfo.frombuf``.
    """

    def __init__(self):
        self.header = bytearray()  # a header block being collected
        self.left = self.skip = 0  # data bytes of the current member to come; then padding to 512
        self.digest = self.name = self.keep = None  # the current member
        self.override = {}  # from a pax or GNU long-name header: applies to the next member
        self.ended = self.after_end = False
        self.actual, self.kept = {}, {}

    def feed(self, data):
        view = memoryview(data)
        while len(view):
            if self.ended:
                self.after_end = self.after_end or bool(view.tobytes().strip(b"\0"))
                return
            if self.left:
                take = min(self.left, len(view))
                self._data(view[:take])
                view, self.left = view[take:], self.left - take
                if not self.left:
                    self._member_done()
            elif self.skip:
                take = min(self.skip, len(view))
                view, self.skip = view[take:], self.skip - take
            else:
                need = tarfile.BLOCKSIZE - len(self.header)
                self.header += view[:need]
                view = view[need:]
                if len(self.header) == tarfile.BLOCKSIZE:
                    self._header(bytes(self.header))
                    self.header = bytearray()

    def _header(self, block):
        try:
            info = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
        except tarfile.EOFHeaderError:
            self.ended = True
            return
        special = info.type in PAX_TYPES or info.type == tarfile.GNUTYPE_LONGNAME
        size, name = info.size, info.name
        if not special:
            size, name = int(self.override.pop("size", size)), self.override.pop("path", name)
            self.override.clear()
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.ReadError("sparse member %s" % name)
        carries_data = info.isreg() or special or info.type not in tarfile.SUPPORTED_TYPES
        if not carries_data or not size:
            self.name = name
            if info.isreg():
                self.digest, self.keep = hashlib.sha256(), [] if name in KEEP else None
                self._member_done()
            return
        self.name, self.left, self.skip = (info.type if special else name), size, -size % tarfile.BLOCKSIZE
        self.digest = hashlib.sha256() if info.isreg() else None
        self.keep = [] if special or (info.isreg() and name in KEEP) else None
        if self.keep is not None and size > KEEP_LIMIT:
            raise tarfile.ReadError("%s is %d bytes" % (name, size))

    def _data(self, piece):
        if self.digest is not None:
            self.digest.update(piece)
        if self.keep is not None:
            self.keep.append(piece.tobytes())

    def _member_done(self):
        data = b"".join(self.keep) if self.keep is not None else None
        if self.name in PAX_TYPES:
            if self.name != tarfile.XGLTYPE:
                self.override.update((k, v) for k, v in _pax_records(data).items() if k in ("path", "size"))
        elif self.name == tarfile.GNUTYPE_LONGNAME:
            self.override["path"] = data.split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")
        elif self.digest is not None:
            self.actual[self.name] = self.digest.hexdigest()
            if data is not None:
                self.kept[self.name] = data
        self.digest = self.keep = None

    def finish(self):
        """The member sums (``{name: sha256}``) and kept members; raise when the archive stops mid-member."""
        if self.left or self.header:
            raise tarfile.ReadError("unexpected end of data")
        return self.actual, self.kept


class _Verifier(object):
    """One pass over a snapshot's bytes: sha256 of the whole, inflate, the tar members against SHA256SUMS."""

    def __init__(self, label):
        self.label = label
        self.whole = hashlib.sha256()
        self.size = 0
        self.inflate = inflate_lib.decompressobj(31)  # 31: expect a gzip header and trailer
        self.tar = _TarWalk()
        self.trailing = 0  # bytes after the gzip trailer: a snapshot has none

    def update(self, block):
        self.whole.update(block)
        self.size += len(block)
        if self.inflate.eof:
            self.trailing += len(block)
            return
        data = block
        while data:
            try:
                out = self.inflate.decompress(data, INFLATE_LIMIT)
            except Exception as exc:  # noqa: BLE001 - zlib.error or isal's IsalError: both mean corrupt data
                raise ValueError("corrupt compressed data (%s)" % exc)
            self.tar.feed(out)
            data = self.inflate.unconsumed_tail
            if self.inflate.eof:
                # The archive ended: count whatever follows it, so finish() can refuse it.
                self.trailing += len(self.inflate.unused_data) + len(data)
                return

    def finish(self):
        """``(sha256 of the whole, meta.json)``; raise SnapshotError when anything is wrong."""
        label = self.label
        try:
            if not self.inflate.eof:
                raise EOFError("the compressed stream ends before its end marker")
            meta = _check_sums(*self.tar.finish(), label=label)
        except CORRUPT as exc:
            raise _corrupt(label, exc)
        if self.tar.after_end:
            raise SnapshotError("snapshot %s has data after the end of its tar archive" % label,
                                "It was altered after it was written; do not restore it, use another backup")
        if self.trailing:
            raise SnapshotError("snapshot %s has %d bytes appended after the end of the compressed archive"
                                % (label, self.trailing),
                                "It was altered after it was written; do not restore it, use another backup")
        return self.whole.hexdigest(), meta or {}

    def check(self, block):
        """update() with the errors of a corrupt stream turned into SnapshotError."""
        try:
            self.update(block)
        except CORRUPT as exc:
            raise _corrupt(self.label, exc)


def _corrupt(label, exc):
    return SnapshotError("snapshot %s is truncated or corrupt (%s)" % (label, exc),
                         "Do not restore it; use an older backup or take a new snapshot")


def _facts(path, size, digest, meta):
    return dict(path=path, size=size, sha256=digest, index=meta.get("Index"), term=meta.get("Term"),
                snapshot_id=meta.get("ID"), version=meta.get("Version"))


def inspect(path):
    """Verify ``path`` in one read and return its facts; raise SnapshotError with the reason otherwise."""
    if not os.path.isfile(path):
        raise SnapshotError("snapshot %s does not exist" % path, "Check the path, or list the available backups")
    size = os.path.getsize(path)
    if size == 0:
        raise SnapshotError("snapshot %s is empty" % path, "Take a new snapshot; this file is useless")
    verifier = _Verifier(path)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            verifier.check(block)
    digest, meta = verifier.finish()
    if os.path.exists(sidecar(path)):
        with open(sidecar(path)) as handle:
            recorded = (handle.read().split() or [""])[0]
        if recorded != digest:
            raise SnapshotError("snapshot %s does not match its recorded checksum %s" % (path, sidecar(path)),
                                "The file changed after it was saved; do not restore it")
    return _facts(path, verifier.size, digest, meta)


class _Checker(threading.Thread):
    """Checks the archive while it downloads, from a queue of blocks (``None`` ends it): the sha256 of the whole
    file, the inflate, the members' sums. It always drains its queue, so the transfer never blocks on it."""

    def __init__(self, label):
        super(_Checker, self).__init__(name="snapshot-check")
        self.daemon = True
        self.blocks = queue.Queue(maxsize=QUEUE_BLOCKS)
        self.verifier = _Verifier(label)
        self.facts, self.error = None, None

    def run(self):
        while True:
            block = self.blocks.get()
            if block is None:
                break
            if self.error is None:
                try:
                    self.verifier.check(block)
                except Exception as exc:  # noqa: BLE001 - re-raised in the transfer's thread by result()
                    self.error = exc
        if self.error is None:
            try:
                self.facts = self.verifier.finish()
            except Exception as exc:  # noqa: BLE001 - as above
                self.error = exc

    def result(self):
        """``(sha256, size, meta)`` once the queue has ended; raises what the check found."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.facts[0], self.verifier.size, self.facts[1]


class _Flusher(threading.Thread):
    """Writes the file back to disk (fdatasync) while the transfer goes on, so the final fsync is short."""

    def __init__(self, fd):
        super(_Flusher, self).__init__(name="snapshot-flush")
        self.daemon = True
        self.fd, self.wake, self.done = fd, threading.Event(), False

    def run(self):
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.done:
                return
            try:
                getattr(os, "fdatasync", os.fsync)(self.fd)  # macOS has no fdatasync
            except OSError:
                return  # the final fsync reports any real error

    def stop(self):
        self.done = True
        self.wake.set()
        self.join()


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


def read_blocks(response, size=BLOCK):
    """The body of a streamed ``requests`` response in blocks of up to ``size`` bytes.

    ``raw.read`` lets http.client decode the server's small HTTP chunks straight into one buffer, where
    ``iter_content`` yields each ~32 KB chunk through several generators. Errors are mapped as ``iter_content``
    maps them, so a stream cut mid-way is a ``requests`` error like any other failed request.
    """
    while True:
        try:
            block = response.raw.read(size, decode_content=True)
        except Exception as exc:  # noqa: BLE001 - raised again, as requests would name it
            raise _requests_error(exc)
        if not block:
            return
        yield block


def _requests_error(exc):
    for theirs, ours in STREAM_ERROR_MAP:
        if isinstance(exc, theirs):
            return ours(exc)
    return exc


def _transfer(response, handle, checker):
    """Write the body to ``handle`` and hand every block to ``checker``; fsync; return the bytes written."""
    size = synced = 0
    flusher = _Flusher(handle.fileno())
    flusher.start()
    try:
        for block in read_blocks(response):
            if checker.error is not None:
                raise checker.error  # not a good snapshot: reading the rest would only waste the transfer
            handle.write(block)
            checker.blocks.put(block)
            size += len(block)
            if size - synced >= SYNC_EVERY:
                handle.flush()
                flusher.wake.set()
                synced = size
    finally:
        checker.blocks.put(None)
        flusher.stop()
    handle.flush()
    os.fsync(handle.fileno())
    return size


def _place(tmp, path, info, mode, sign):
    """Sidecar, optional signature, then the snapshot itself, each renamed into place (mode ``mode``)."""
    side_tmp, sig_tmp = tmp + ".sha256", tmp + ".sig"
    os.chmod(tmp, mode)
    with open(side_tmp, "w") as handle:
        handle.write("%s  %s\n" % (info["sha256"], os.path.basename(path)))
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


def save_stream(response, path, mode=0o600, sign=None):
    """Write a streamed response to ``path`` atomically (temp file + fsync + rename), verified first.

    One thread reads the socket into the temporary file; a second one checks what it read (sha256 of the whole,
    inflate, the members' sums), joined before the rename: the check overlaps the transfer instead of following it.
    ``sign(facts)``, when given, returns the text of the signature file (``<path>.sig``). The side files are
    renamed into place before the snapshot, so a snapshot that can be seen always has them. The temporary
    files are removed on any failure, so nothing that looks complete is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    started = time.time()
    checker = _Checker(path)
    checker.start()
    try:
        with os.fdopen(fd, "wb") as handle:
            size = _transfer(response, handle, checker)
        expected = response.headers.get("Content-Length")
        if expected is not None and int(expected) != size:
            checker.join()
            raise SnapshotError("the snapshot stream ended early (%s of %s bytes)" % (size, expected),
                                "The leader probably changed mid-transfer; run again")
        digest, size, meta = checker.result()
        info = _facts(path, size, digest, meta)
        _place(tmp, path, info, mode, sign)
    except BaseException:
        for leftover in (tmp, tmp + ".sha256", tmp + ".sig"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    info["path"] = path
    info["seconds"] = round(time.time() - started, 3)
    return info
