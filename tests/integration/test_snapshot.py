"""vault_raft_snapshot on real clusters: save three ways, verify, refuse bad files, disaster recovery."""

import gzip
import io
import os
import secrets as pysecrets
import shutil
import stat
import tarfile

import hvac.exceptions
import pytest

from heracles_testlib import ClusterHandle, run_module

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
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open(path + ".sha256").read().split()[0] == real["sha256"]
    assert [f for f in os.listdir(str(tmp_path)) if f.endswith(".partial")] == []
    again = run_module("vault_raft_snapshot", source.conn(path=path))
    assert again["changed"] is False and again["sha256"] == real["sha256"]
    verified = run_module("vault_raft_snapshot", source.conn(path=path, state="verified"))
    assert verified["changed"] is False and verified["sha256"] == real["sha256"]


def test_save_from_a_standby_url_follows_the_leader(source, tmp_path):
    standby = [u for u in source.urls if u != source.leader()][0]
    res = run_module("vault_raft_snapshot", source.conn(url=standby, nodes=[], path=str(tmp_path / "s.snap")))
    assert not res.failed and res["vault_endpoint"] == source.leader()


def corrupt_copy(src, dest):
    """Re-pack the archive with one byte of state.bin flipped (SHA256SUMS no longer matches)."""
    out = io.BytesIO()
    with tarfile.open(src, "r:gz") as archive, tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in archive:
            data = archive.extractfile(member).read()
            if member.name == "state.bin":
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    with open(dest, "wb") as handle:
        handle.write(out.getvalue())


@pytest.fixture(scope="module")
def snapshot_a(source, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("snaps") / "a.snap")
    res = run_module("vault_raft_snapshot", source.conn(path=path))
    assert not res.failed, res
    return path


@pytest.mark.parametrize("kind,why", [
    ("truncated", "truncated or corrupt"),
    ("corrupt", "does not match its SHA256SUMS"),
    ("not-a-snapshot", "truncated or corrupt"),
    ("tampered-after-save", "does not match its recorded checksum"),
])
def test_bad_files_are_refused_and_cluster_keeps_data(source, snapshot_a, tmp_path, kind, why):
    bad = str(tmp_path / ("%s.snap" % kind))
    raw = open(snapshot_a, "rb").read()
    if kind == "truncated":
        open(bad, "wb").write(raw[: len(raw) // 2])
    elif kind == "corrupt":
        corrupt_copy(snapshot_a, bad)
    elif kind == "not-a-snapshot":
        open(bad, "wb").write(gzip.compress(b"hello"))
    else:
        open(bad, "wb").write(raw)
        open(bad + ".sha256", "w").write("0" * 64 + "  x\n")
    before = read_all(source, source.root_token, dict(list(source.data.items())[:20]))
    for state in ("verified", "restored"):
        res = run_module("vault_raft_snapshot", source.conn(path=bad, state=state, force=True))
        assert res.failed and why in res["msg"], res["msg"]
        assert res["changed"] is False
    assert read_all(source, source.root_token, dict(list(source.data.items())[:20])) == before


def test_foreign_snapshot_refused_without_force(snapshot_a, tmp_path_factory):
    other = ClusterHandle(tmp_path_factory.mktemp("foreign"), node_count=1).start().bootstrap(voters=1)
    try:
        assert not run_module("vault_mount", other.conn(path="kv-mine", type="kv", options={"version": "2"})).failed
        res = run_module("vault_raft_snapshot", other.conn(path=snapshot_a, state="restored"))
        assert res.failed and "another cluster" in res["msg"] and "force=true" in res["msg"]
        assert "kv-mine/" in other.hvac().sys.list_mounted_secrets_engines()["data"]
    finally:
        other.stop()


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
        check = run_module("vault_raft_snapshot", new.conn(path=snapshot_a, state="restored", force=True,
                                                           restore_init_file=a_init, restore_init_file_password_file=a_pass),
                           check=True)
        assert check["changed"] is True
        with pytest.raises(hvac.exceptions.Forbidden):  # check mode restored nothing
            read_all(new, a_token, dict(list(source.data.items())[:1]))
        res = run_module("vault_raft_snapshot", new.conn(path=snapshot_a, state="restored", force=True,
                                                         restore_init_file=a_init, restore_init_file_password_file=a_pass))
        assert not res.failed, res
        assert res["changed"] is True and res["leader"] in new.urls
        assert read_all(new, a_token, source.data) == expected
        status = run_module("vault_status_info", new.conn(auth_method="token", token=a_token))
        assert status["sealed_nodes"] == [] and status["leader"]
    finally:
        new.stop()
