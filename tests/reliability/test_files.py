"""Files and permissions: what the collection writes is private, the init file is encrypted, TLS is verified.

* The session cluster's directory after bootstrap: every directory 0700, every file 0600 except the public
  certificates, everything owned by the user running the tests; the init file is ansible-vault encrypted.
* The same rules hold when the modules run under a permissive umask (000): modes are set, not inherited.
  local_cluster, vault_init, vault_raft_snapshot, vault_rekey and vault_audit_report write the files here.
* TLS verification is turned off only by validate_certs=false, which warns (tests/integration/
  test_leader_following.py::test_validate_certs_false_warns). No environment variable turns it off:
  the CLIs' BAO_SKIP_VERIFY/VAULT_SKIP_VERIFY are ignored -- with a warning that says so -- and requests'
  CURL_CA_BUNDLE / REQUESTS_CA_BUNDLE and Python's PYTHONHTTPSVERIFY cannot disable it either.
"""

import base64
import binascii
import json
import os
import stat

import certifi
import pytest

from heracles_faults import wait_leader
from heracles_testlib import ClusterHandle, files_text, find_leaks, free_base_port, run_module

PUBLIC = (".pem",)  # certificates; their keys end in -key.pem


def modes(root):
    """{relative path: (mode, uid, is_dir)} of root and everything under it."""
    info = os.stat(root)
    out = {".": (stat.S_IMODE(info.st_mode), info.st_uid, True)}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            info = os.lstat(path)
            out[os.path.relpath(path, root)] = (stat.S_IMODE(info.st_mode), info.st_uid, stat.S_ISDIR(info.st_mode))
    return out


def public(path):
    return path.endswith(PUBLIC) and not path.endswith("-key.pem")


def not_private(root, allow=()):
    """Paths whose mode or owner break the rules: dirs 0700, files 0600 (certificates may be 0644), ours."""
    bad = []
    for path, (mode, uid, is_dir) in sorted(modes(root).items()):
        if path in allow:
            continue
        wanted = (0o700,) if is_dir else ((0o600, 0o644) if public(path) else (0o600,))
        if mode not in wanted or uid != os.getuid():
            bad.append("%s %o uid=%d" % (path, mode, uid))
    return bad


def key_needles(material):
    out = [material["root_token"]]
    for key in material.get("unseal_keys_b64") or []:
        out += [key, binascii.hexlify(base64.b64decode(key)).decode()]
    return out


# ---------------------------------------------------------------- after bootstrap (the session cluster)
def test_bootstrapped_cluster_files_are_private(cluster):
    found = modes(cluster.base_dir)
    for path in ("init.vault", "tls/ca-key.pem", "tls/node1-key.pem", "tls/node2-key.pem", "tls/node3-key.pem",
                 "node1/config.hcl", "node1/audit/audit.log", "node1/data/raft/raft.db"):
        assert found[path][0] == 0o600, (path, oct(found[path][0]))
    for path in (".", "tls", "node1", "node1/data", "node1/audit"):
        assert found[path][0] == 0o700, (path, oct(found[path][0]))
    assert not_private(cluster.base_dir) == []


def test_init_file_is_encrypted_and_holds_no_key_in_clear(cluster):
    with open(cluster.init_file, "rb") as handle:
        raw = handle.read()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    material = cluster.init_material()
    assert len(material["unseal_keys_b64"]) == 3 and material["root_token"]
    text = raw.decode("ascii")
    assert find_leaks(key_needles(material), [("init.vault", text)]) == []
    # ... and nowhere else in the cluster's directory (raft data, logs, configs) either
    assert find_leaks(key_needles(material), files_text(cluster.base_dir)) == []


# ---------------------------------------------------------------- under umask 000
@pytest.fixture()
def open_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_files_are_private_whatever_the_umask(tmp_path, open_umask):
    base = str(tmp_path / "cluster")
    lc_args = dict(base_dir=base, node_count=1, base_port=free_base_port(nodes=1))
    res = run_module("local_cluster", lc_args)
    assert not res.failed, res
    try:
        handle = ClusterHandle(base, node_count=1, base_port=lc_args["base_port"])
        handle.password_file = str(tmp_path / "vault-pass")
        with open(handle.password_file, "w") as out:  # the test's own file; the modules must not rely on its mode
            out.write(handle.password + "\n")
        os.chmod(handle.password_file, 0o600)
        conn = handle.conn(nodes=[])
        assert not run_module("vault_init", dict(conn, auth_method="none", secret_shares=1, secret_threshold=1)).failed
        assert not run_module("vault_unseal", dict(conn, auth_method="none")).failed
        wait_leader(handle)
        backups = tmp_path / "backups"
        backups.mkdir(mode=0o700)
        os.chmod(str(backups), 0o700)  # mkdir's mode is masked by the umask too; the backup role sets it like this
        res = run_module("vault_raft_snapshot", dict(conn, path=str(backups / "raft.snap")))
        assert not res.failed, res
        res = run_module("vault_rekey", dict(conn, force=True))
        assert not res.failed and res["changed"] is True, res
        reports = tmp_path / "reports"
        reports.mkdir()
        os.chmod(str(reports), 0o700)
        res = run_module("vault_audit_report", dict(paths=[os.path.join(base, "node1", "audit", "audit.log")],
                                                    since="1h", dest=str(reports / "report.json"),
                                                    summary_dest=str(reports / "report.txt")))
        assert not res.failed, res

        written = modes(str(tmp_path))
        assert written["backups/raft.snap"][0] == 0o600 and written["backups/raft.snap.sha256"][0] == 0o600
        assert [p for p in written if p.startswith("cluster/init.vault.") and p.endswith(".bak")]
        assert written["reports/report.json"][0] == 0o600 and written["reports/report.txt"][0] == 0o600
        assert not_private(str(tmp_path), allow=(".",)) == []
        with open(os.path.join(base, "init.vault"), "rb") as init:
            assert init.read().startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    finally:
        res = run_module("local_cluster", dict(lc_args, state="absent"))
        assert not res.failed, res


# ---------------------------------------------------------------- TLS verification cannot be turned off silently
@pytest.mark.parametrize("variables, ca_cert", [
    ({"VAULT_SKIP_VERIFY": "1"}, "wrong-ca"),
    ({"BAO_SKIP_VERIFY": "true"}, "no-ca"),
    ({"CURL_CA_BUNDLE": ""}, "no-ca"),  # an empty bundle once meant "do not verify" in requests
    ({"REQUESTS_CA_BUNDLE": ""}, "no-ca"),
    ({"PYTHONHTTPSVERIFY": "0"}, "no-ca"),
    ({"VAULT_SKIP_VERIFY": "1", "BAO_SKIP_VERIFY": "1", "CURL_CA_BUNDLE": "", "PYTHONHTTPSVERIFY": "0"}, "wrong-ca"),
], ids=["VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY", "CURL_CA_BUNDLE-empty", "REQUESTS_CA_BUNDLE-empty",
        "PYTHONHTTPSVERIFY-0", "all-of-them"])
def test_no_environment_variable_turns_tls_verification_off(cluster, variables, ca_cert):
    args = cluster.conn(include_raft=False)
    if ca_cert == "wrong-ca":
        args["ca_cert"] = certifi.where()  # public CAs: not the one that signed the cluster's certificates
    else:
        args.pop("ca_cert")
    res = run_module("vault_status_info", args, extra_env=dict(variables, VAULT_CACERT="", BAO_CACERT=""))
    assert res.failed, "TLS verification was turned off by %s" % sorted(variables)
    assert "TLS verification failed" in res["msg"] and "Set ca_cert" in res["msg"]


def test_skip_verify_variable_is_ignored_with_a_warning(cluster):
    res = run_module("vault_status_info", cluster.conn(include_raft=False), extra_env={"VAULT_SKIP_VERIFY": "1"})
    assert not res.failed, res
    warnings = json.dumps(res.get("warnings", []))
    assert "VAULT_SKIP_VERIFY is set, but this collection ignores it" in warnings
    assert "TLS certificates ARE verified" in warnings and "validate_certs=false" in warnings
    quiet = run_module("vault_status_info", cluster.conn(include_raft=False), extra_env={"VAULT_SKIP_VERIFY": "false"})
    assert not quiet.failed and "SKIP_VERIFY" not in json.dumps(quiet.get("warnings", []))
