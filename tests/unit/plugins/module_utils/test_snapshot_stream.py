"""snapshot.py: the streamed save checks the archive while it downloads, and leaves nothing behind on failure."""

import hashlib
import io
import json
import os
import stat
import tarfile
import zlib

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap


def make_snapshot(state=b"raft state " * 1000, tamper=False):
    """A tar.gz shaped like a raft snapshot: meta.json, state.bin, SHA256SUMS."""
    meta = json.dumps({"ID": "2-42-1", "Index": 42, "Term": 2, "Version": 1}).encode()
    sums = "".join("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name)
                   for name, data in (("meta.json", meta), ("state.bin", state))).encode()
    if tamper:
        state = state[:-1] + b"X"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in (("meta.json", meta), ("state.bin", state), ("SHA256SUMS", sums)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


class FakeRaw:
    """urllib3's response body: ``read(amt, decode_content)``; ``fail`` raises it once the body is read."""

    def __init__(self, body, fail=None):
        self.stream, self.fail = io.BytesIO(body), fail

    def read(self, amt, decode_content=None):
        block = self.stream.read(amt)
        if not block and self.fail is not None:
            raise self.fail
        return block


class FakeResponse:
    def __init__(self, body, length=None, cut=None, fail=None):
        self.body = body if cut is None else body[:cut]
        self.headers = {"Content-Length": str(len(body) if length is None else length)}
        self.raw = FakeRaw(self.body, fail)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


@pytest.fixture(params=["isal", "zlib"])
def inflate(request, monkeypatch):
    """Both decompressors: ISA-L when installed (requirements.txt), zlib as the fallback."""
    if request.param == "zlib":
        monkeypatch.setattr(snap, "inflate_lib", zlib)
    elif snap.inflate_lib is zlib:
        pytest.skip("isal is not installed")
    return request.param


def test_save_stream_checks_in_one_pass_and_writes_0600(tmp_path, monkeypatch, inflate):
    body = make_snapshot(state=os.urandom(3 * snap.CHUNK))  # several blocks through the checker's pipe
    path = str(tmp_path / "raft.snap")
    monkeypatch.setattr(snap, "file_sha256", lambda p: pytest.fail("the saved file must not be read again"))
    info = snap.save_stream(FakeResponse(body), path)
    assert info["size"] == len(body) and info["sha256"] == hashlib.sha256(body).hexdigest()
    assert (info["index"], info["term"], info["snapshot_id"]) == (42, 2, "2-42-1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(snap.sidecar(path)) as handle:
        assert handle.read().split()[0] == info["sha256"]
    monkeypatch.undo()
    assert snap.inspect(path)["sha256"] == info["sha256"]  # state=verified agrees with the streamed check
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("response, words", [
    (lambda body: FakeResponse(body, cut=len(body) // 2), "ended early"),
    (lambda body: FakeResponse(make_snapshot(tamper=True)), "does not match its SHA256SUMS"),
    (lambda body: FakeResponse(b"<html>not a snapshot</html>"), "truncated or corrupt"),
    (lambda body: FakeResponse(body[:len(body) // 2], length=len(body) // 2), "truncated or corrupt"),
], ids=["short-of-content-length", "tampered-member", "not-an-archive", "cut-without-length-check"])
def test_save_stream_refuses_and_leaves_nothing(tmp_path, response, words, inflate):
    path = str(tmp_path / "raft.snap")
    with pytest.raises(snap.SnapshotError) as info:
        snap.save_stream(response(make_snapshot()), path)
    assert words in str(info.value)
    assert os.listdir(str(tmp_path)) == []  # no final file, no temp file, no sidecar


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_inspect_names_a_truncated_file(tmp_path, cut, inflate):
    body = make_snapshot(state=os.urandom(2 * snap.CHUNK))
    path = tmp_path / "cut.snap"
    path.write_bytes(body[:int(len(body) * cut)])
    with pytest.raises(snap.SnapshotError) as info:
        snap.inspect(str(path))
    assert "truncated or corrupt" in str(info.value)


def test_bytes_appended_after_the_archive_are_refused(tmp_path, inflate):
    body = make_snapshot()
    path = tmp_path / "extended.snap"
    path.write_bytes(body + b"\x00" * 10 + b"appended")
    with pytest.raises(snap.SnapshotError) as info:
        snap.inspect(str(path))
    assert "18 bytes appended after the end of the compressed archive" in str(info.value)
    with pytest.raises(snap.SnapshotError) as info:
        snap.save_stream(FakeResponse(body + b"junk"), str(tmp_path / "saved.snap"))
    assert "4 bytes appended" in str(info.value)
    assert sorted(os.listdir(str(tmp_path))) == ["extended.snap"]  # the refused save left nothing


def test_sha256sums_must_list_every_member(tmp_path, inflate):
    """A SHA256SUMS that leaves state.bin out would let any state.bin through."""
    meta = b'{"Index": 1}'
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in (("meta.json", meta), ("state.bin", b"anything"),
                           ("SHA256SUMS", ("%s  meta.json\n" % hashlib.sha256(meta).hexdigest()).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "partial-sums.snap"
    path.write_bytes(out.getvalue())
    with pytest.raises(snap.SnapshotError) as info:
        snap.inspect(str(path))
    assert "lists no sum for state.bin" in str(info.value)


def test_save_stream_signs_before_the_snapshot_appears(tmp_path):
    path = str(tmp_path / "raft.snap")
    seen = []

    def sign(facts):
        seen.append(os.listdir(str(tmp_path)))
        return json.dumps({"sha256": facts["sha256"]})

    info = snap.save_stream(FakeResponse(make_snapshot()), path, sign=sign)
    assert "raft.snap" not in seen[0]
    assert json.load(open(snap.signature_path(path)))["sha256"] == info["sha256"]
    assert stat.S_IMODE(os.stat(snap.signature_path(path)).st_mode) == 0o600

    def broken(facts):
        raise RuntimeError("no key")

    with pytest.raises(RuntimeError):
        snap.save_stream(FakeResponse(make_snapshot()), str(tmp_path / "other.snap"), sign=broken)
    assert sorted(os.listdir(str(tmp_path))) == ["raft.snap", "raft.snap.sha256", "raft.snap.sig"]


def test_a_stream_cut_mid_body_is_a_requests_error_and_leaves_nothing(tmp_path):
    import requests
    import urllib3
    body = make_snapshot()
    cut = FakeResponse(body, cut=len(body) // 2, fail=urllib3.exceptions.ProtocolError("Connection broken"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # retried by the module like a failed request
        snap.save_stream(cut, str(tmp_path / "raft.snap"))
    assert os.listdir(str(tmp_path)) == []


def test_a_stream_that_is_no_snapshot_stops_early(tmp_path):
    body = b"<html>not a snapshot</html>" + os.urandom(12 * snap.BLOCK)
    response = FakeResponse(body)
    with pytest.raises(snap.SnapshotError) as info:
        snap.save_stream(response, str(tmp_path / "raft.snap"))
    assert "truncated or corrupt" in str(info.value) and "ended early" not in str(info.value)
    assert response.raw.stream.tell() < len(body) // 2 and os.listdir(str(tmp_path)) == []


def tar_of(members, fmt):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("piece", [1, 7, 511, 513, 100000])
def test_the_tar_walk_sees_the_members_whatever_the_pieces(fmt, piece):
    """Fed in pieces that cut headers and data anywhere, the walk finds what tarfile finds (long names included)."""
    long_name = "d/" + "n" * 120 if fmt != tarfile.USTAR_FORMAT else "short"
    members = [("meta.json", b"{}"), ("state.bin", os.urandom(3000)), (long_name, b"x" * 700), ("empty", b"")]
    data = tar_of(members, fmt) + b"\0" * 1024
    walk = snap._TarWalk()
    for start in range(0, len(data), piece):
        walk.feed(data[start:start + piece])
    actual, kept = walk.finish()
    assert actual == dict((name, hashlib.sha256(body).hexdigest()) for name, body in members)
    assert kept == {"meta.json": b"{}"} and not walk.after_end


@pytest.mark.parametrize("damage, words", [
    (lambda tar: tar[:600] + bytes([tar[600] ^ 1]) + tar[601:], None),  # in member data: the sums catch it
    (lambda tar: tar[:100] + b"X" + tar[101:], "bad checksum"),  # in a header
    (lambda tar: tar[:1536 + 512 + 100], "unexpected end of data"),  # mid-member (state.bin)
    (lambda tar: tar + b"more", None),  # after the end-of-archive block
], ids=["data", "header", "cut", "after-end"])
def test_the_tar_walk_refuses_damage(damage, words):
    tar = damage(tar_of([("meta.json", b"{}" * 300), ("state.bin", b"s" * 2000)], tarfile.USTAR_FORMAT))
    walk = snap._TarWalk()
    if words is None:
        walk.feed(tar)
        actual, dummy = walk.finish()
        assert walk.after_end or actual["meta.json"] != hashlib.sha256(b"{}" * 300).hexdigest()
        return
    with pytest.raises(tarfile.TarError) as info:
        walk.feed(tar)
        walk.finish()
    assert words in str(info.value)
