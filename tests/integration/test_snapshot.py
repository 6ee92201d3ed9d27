"""vault_raft_snapshot on real clusters: save three ways, verify, refuse bad files, disaster recovery."""

import hashlib
import io
import os
import secrets as pysecrets
import shutil
import stat
import tarfile

import hvac.exceptions
import pytest

from heracles_testlib import ClusterHandle, keystore, run_module

pytestmark = pytest.mark.slow
MOUNT = "kv-dr"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Cluster A with 300 secrets, some with several versions."""
    handle = ClusterHandle(tmp_path_factory.mktemp("dr-a")).start().bootstrap()
    assert not run_module("vault_mount", handle.conn(path=MOUNT, type="kv", options={"version": "2"})).failed
    data = dict(("apps/s%03d" % i, {"user": "user-%d" % i, "password": pysecrets.token_hex(12)}) for i in range(300))
    assert run_module("vault_kv_seed", handle.conn(mount=MOUNT, prefix="apps", secrets=data))["created"] == 300
    for i in range(10):  # second versions
        data["apps/s%03d" % i]["password"] = pysecrets.token_hex(12)
    assert run_module("vault_kv_seed", handle.conn(mount=MOUNT, prefix="apps", secrets=data))["updated"] == 10
    handle.data = data
    try:
        yield handle
    finally:
        handle.stop()


def read_all(cluster, token, data):
    client = cluster.hvac()
    client.token = token
    out = {}
    for path in data:
        body = client.secrets.kv.v2.read_secret_version(path, mount_point=MOUNT, raise_on_deleted_version=True)["data"]
        out[path] = (body["data"], body["metadata"]["version"])
    return out


def test_save_check_real_rerun(source, tmp_path):
    path = str(tmp_path / "a.snap")
    check = run_module("vault_raft_snapshot", source.conn(path=path), check=True)
    assert not check.failed and check["changed"] is True and not os.path.exists(path)
    real = run_module("vault_raft_snapshot", source.conn(path=path))
    assert not real.failed, real
    assert real["changed"] is True and real["size"] == os.path.getsize(path) and real["index"] > 0
    assert real["signing_key"] == "created"  # the first signed save of this cluster adds the key to its init material
    key_id = keystore.signing_keys(source.init_material())[0]["id"]
    health = source.hvac().sys.read_health_status(method="GET")
    assert real["signature"] == dict(status="valid", alg="hmac-sha256", key_id=key_id, cluster_id=health["cluster_id"],
                                     signed_at=real["signature"]["signed_at"], verified_with=source.init_file)
    for name in (path, path + ".sha256", path + ".sig"):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    assert open(path + ".sha256").read().split()[0] == real["sha256"]
    assert [f for f in os.listdir(str(tmp_path)) if f.endswith(".partial")] == []
    again = run_module("vault_raft_snapshot", source.conn(path=path))
    assert again["changed"] is False and again["sha256"] == real["sha256"] and "signing_key" not in again
    verified = run_module("vault_raft_snapshot", source.conn(path=path, state="verified"))
    assert verified["changed"] is False and verified["sha256"] == real["sha256"]
    assert verified["signature"]["status"] == "valid" and verified["signature"]["key_id"] == key_id
    assert [e["id"] for e in keystore.signing_keys(source.init_material())] == [key_id]  # created once


def test_save_from_a_standby_url_follows_the_leader(source, tmp_path):
    standby = [u for u in source.urls if u != source.leader()][0]
    res = run_module("vault_raft_snapshot", source.conn(url=standby, nodes=[], path=str(tmp_path / "s.snap")))
    assert not res.failed and res["vault_endpoint"] == source.leader()


def members(path):
    with tarfile.open(path, "r:gz") as archive:
        return [(member, archive.extractfile(member).read()) for member in archive]


def repack(src, dest, state=None):
    """Re-pack a snapshot, optionally with another state.bin and a SHA256SUMS recomputed to match (what an attacker
    who can write the bucket does: the archive's own sums check out)."""
    items = members(src)
    data = dict((m.name, d) for m, d in items)
    if state is not None:
        data["state.bin"] = state
        data["SHA256SUMS"] = "".join("%s  %s\n" % (hashlib.sha256(data[n]).hexdigest(), n)
                                     for n in ("meta.json", "state.bin")).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as new:
        for member, dummy in items:
            member.size = len(data[member.name])
            new.addfile(member, io.BytesIO(data[member.name]))
    with open(dest, "wb") as handle:
        handle.write(out.getvalue())


def _varint(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def alter_one_secret(state, mount_uuid):
    """state.bin is a stream of length-delimited StorageEntry{key=1, value=2}: flip the last byte of the encrypted value
    of one KV secret's metadata entry under the mount, as the issue's attacker did (its GCM tag no longer matches)."""
    buf, pos = bytearray(state), 0
    while pos < len(buf):
        length, start = _varint(buf, pos)
        dummy, cur = _varint(buf, start)  # field 1 tag
        key_len, cur = _varint(buf, cur)
        key = bytes(buf[cur:cur + key_len])
        cur += key_len
        if key.startswith(b"logical/" + mount_uuid.encode()) and b"/metadata/" in key:
            dummy, cur = _varint(buf, cur)  # field 2 tag
            value_len, cur = _varint(buf, cur)
            buf[cur + value_len - 1] ^= 0x01
            return bytes(buf)
        pos = start + length
    raise AssertionError("no KV metadata entry under %s in state.bin" % mount_uuid)


@pytest.fixture(scope="module")
def snapshot_a(source, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("snaps") / "a.snap")
    res = run_module("vault_raft_snapshot", source.conn(path=path))
    assert not res.failed, res
    assert res["signature"]["status"] == "valid"
    return path


@pytest.fixture(scope="module")
def altered_a(source, snapshot_a):
    """Cluster A's snapshot with one secret's encrypted entry altered and SHA256SUMS recomputed."""
    uuid = source.hvac().sys.list_mounted_secrets_engines()["data"][MOUNT + "/"]["uuid"]
    path = snapshot_a[:-len(".snap")] + "-altered.snap"
    state = [d for m, d in members(snapshot_a) if m.name == "state.bin"][0]
    repack(snapshot_a, path, alter_one_secret(state, uuid))
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A one-node cluster F with data of its own and a snapshot it signed: foreign to A."""
    handle = ClusterHandle(tmp_path_factory.mktemp("foreign"), node_count=1).start().bootstrap(voters=1)
    try:
        assert not run_module("vault_mount", handle.conn(path="kv-mine", type="kv", options={"version": "2"})).failed
        handle.snapshot = os.path.join(handle.base_dir, "f.snap")
        res = run_module("vault_raft_snapshot", handle.conn(path=handle.snapshot))
        assert not res.failed and res["signature"]["status"] == "valid", res
        yield handle
    finally:
        handle.stop()


def copy_with_signature(src, dest, raw=None):
    with open(dest, "wb") as handle:
        handle.write(open(src, "rb").read() if raw is None else raw)
    shutil.copy(src + ".sig", dest + ".sig")


def make_bad(kind, snapshot_a, altered_a, foreign, bad):
    raw = open(snapshot_a, "rb").read()
    if kind == "truncated":
        copy_with_signature(snapshot_a, bad, raw[: len(raw) // 2])
    elif kind == "flipped-byte":
        copy_with_signature(snapshot_a, bad, raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1:])
    elif kind == "recomputed-sha256sums":
        shutil.copy(altered_a, bad)
        shutil.copy(snapshot_a + ".sig", bad + ".sig")  # the signature the attacker found beside the original
    elif kind == "appended-bytes":
        copy_with_signature(snapshot_a, bad, raw + b"\x1f\x8b appended after the archive")
    elif kind == "empty":
        copy_with_signature(snapshot_a, bad, b"")
    elif kind == "random":
        copy_with_signature(snapshot_a, bad, os.urandom(len(raw)))
    elif kind == "foreign-signed":
        copy_with_signature(foreign.snapshot, bad)
    elif kind == "foreign-unsigned":
        shutil.copy(foreign.snapshot, bad)
    else:
        raise AssertionError(kind)


UNSIGNED_REFUSAL = ["no valid signature", "cannot be told apart", "Do NOT force it", "cluster keeps its data"]
# kind -> [(extra module args, words the message must hold)]; every run must fail and change nothing, and only a
# snapshot whose signature proves where it comes from may be called foreign and answered with "set force=true".
BAD = {
    "truncated": [(dict(state="verified"), ["truncated or corrupt"]),
                  (dict(state="restored", force=True), ["truncated or corrupt", "Do not restore it"])],
    "flipped-byte": [(dict(state="verified"), ["corrupt"]),
                     (dict(state="restored", force=True), ["corrupt", "Do not restore it"])],
    "recomputed-sha256sums": [
        (dict(state="verified"), ["signature of snapshot", "does not match the file", "signed for sha256"]),
        (dict(state="restored", force=True), ["does not match the file", "force=true does not override this"]),
        # Finding 1: with the signature check waived, the server itself refuses it -- and we do not call it foreign.
        (dict(state="restored", allow_unsigned=True), ["hash check failed"] + UNSIGNED_REFUSAL)],
    "appended-bytes": [(dict(state="verified"), ["bytes appended after the end of the compressed archive"]),
                       (dict(state="restored", force=True), ["appended after the end", "do not restore it"])],
    "empty": [(dict(state="verified"), ["is empty"]), (dict(state="restored", force=True), ["is empty"])],
    "random": [(dict(state="verified"), ["truncated or corrupt"]),
               (dict(state="restored", force=True), ["truncated or corrupt"])],
    "foreign-signed": [
        (dict(state="verified"), ["is signed with key hmac-", "which neither this cluster's init material"]),
        (dict(state="restored", force=True), ["which neither", "force=true does not override this"]),
        (dict(state="restored", source=True), ["taken on another cluster", "its signature is valid",
                                               "set force=true and restore_init_file"])],
    "foreign-unsigned": [
        (dict(state="verified"), ["has no signature", "allow_unsigned=true"]),
        (dict(state="restored", force=True), ["has no signature", "force=true does not override this"]),
        (dict(state="restored", allow_unsigned=True), UNSIGNED_REFUSAL)],
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_snapshot_is_refused_truthfully_and_the_cluster_keeps_its_data(
        source, snapshot_a, altered_a, foreign, tmp_path, kind):
    bad = str(tmp_path / ("%s.snap" % kind))
    make_bad(kind, snapshot_a, altered_a, foreign, bad)
    sample = dict(list(source.data.items())[:20])
    before = read_all(source, source.root_token, sample)
    for extra, words in BAD[kind]:
        args = dict(extra, path=bad)
        if args.pop("source", False):
            args.update(restore_init_file=foreign.init_file, restore_init_file_password_file=foreign.password_file)
        res = run_module("vault_raft_snapshot", source.conn(**args))
        assert res.failed and res["changed"] is False, (args, res)
        for word in words:
            assert word in res["msg"], (args, word, res["msg"])
        if kind != "foreign-signed":  # the old module's verdict and advice for what it could not know
            assert "it was taken on another cluster" not in res["msg"] and "set force=true" not in res["msg"], res["msg"]
    assert read_all(source, source.root_token, sample) == before


def test_forced_restore_of_altered_data_fails_and_names_the_path(source, altered_a, foreign):
    """Finding 1's end: forced into another cluster (signature waived) the server accepts it; the read-back must not."""
    res = run_module("vault_raft_snapshot", foreign.conn(path=altered_a, state="restored", force=True,
                                                         allow_unsigned=True, restore_init_file=source.init_file,
                                                         restore_init_file_password_file=source.password_file))
    assert res.failed and res["changed"] is True, res
    assert [u["mount"] for u in res["unreadable"]] == [MOUNT], res["unreadable"]
    path = res["unreadable"][0]["path"]
    assert "message authentication failed" in res["unreadable"][0]["error"]
    assert "%s/%s (decryption failed" % (MOUNT, path) in res["msg"] and "restore an older signed backup" in res["msg"]
    assert res["readback"]["checked"] == res["readback"]["secrets"] == len(source.data)
    client = foreign.hvac(token=False)
    client.token = source.root_token
    with pytest.raises(hvac.exceptions.InternalServerError, match="message authentication failed"):
        client.secrets.kv.v2.read_secret_version(path, mount_point=MOUNT, raise_on_deleted_version=True)
    other = [p for p in source.data if p != path][0]
    assert client.secrets.kv.v2.read_secret_version(other, mount_point=MOUNT, raise_on_deleted_version=True)


def test_disaster_recovery_into_a_new_cluster(source, snapshot_a, tmp_path_factory):
    expected = read_all(source, source.root_token, source.data)
    assert sorted(set(v for _d, v in expected.values())) == [1, 2]
    a_token, a_init, a_pass = source.root_token, source.init_file, source.password_file
    # The disaster: cluster A's processes and data are gone.
    source.lc.stop()
    for node in source.lc.nodes:
        shutil.rmtree(node.data_dir)
    new = ClusterHandle(tmp_path_factory.mktemp("dr-b")).start().bootstrap()
    try:
        own = str(tmp_path_factory.mktemp("dr-b-snaps") / "b.snap")  # B signs one of its own: a key in B's material
        assert run_module("vault_raft_snapshot", new.conn(path=own))["signature"]["status"] == "valid"
        restore = dict(path=snapshot_a, state="restored", force=True, restore_init_file=a_init,
                       restore_init_file_password_file=a_pass, adopt_init_material=True)
        check = run_module("vault_raft_snapshot", new.conn(**restore), check=True)
        assert not check.failed and check["changed"] is True and check["msg"].startswith("would restore " + snapshot_a)
        assert check["signature"]["verified_with"] == "restore_init_file " + a_init
        with pytest.raises(hvac.exceptions.Forbidden):  # check mode restored nothing
            read_all(new, a_token, dict(list(source.data.items())[:1]))
        b_material = new.init_material()
        res = run_module("vault_raft_snapshot", new.conn(**restore))
        assert not res.failed, res
        assert res["changed"] is True and res["leader"] in new.urls
        assert res["readback"]["checked"] == res["readback"]["secrets"] == len(source.data)
        assert res["readback"]["unreadable"] == []
        assert read_all(new, a_token, source.data) == expected
        # The connection's init material now matches the data (A's keys and token, B's signing key kept) ...
        adopted = res["init_material"]
        assert adopted["adopted"] is True and adopted["matches"] == new.init_file
        assert stat.S_IMODE(os.stat(adopted["previous_backup"]).st_mode) == 0o600
        material = new.init_material()
        assert material["root_token"] == a_token and material["unseal_keys_b64"] != b_material["unseal_keys_b64"]
        status = run_module("vault_status_info", new.conn())
        assert status["sealed_nodes"] == [] and status["leader"] and "raft_error" not in status, status
        for path in (own, snapshot_a):
            assert run_module("vault_raft_snapshot", new.conn(path=path, state="verified"))["signature"]["status"] == "valid"
        # ... and the material it replaced is named for what it is when used again.
        stale = run_module("vault_raft_snapshot", new.conn(path=own + "-2", init_file=adopted["previous_backup"]),
                           check=True)
        assert stale.failed and "does not match this cluster's data" in stale["msg"], stale
        assert "forced restore" in stale["msg"]
    finally:
        new.stop()
