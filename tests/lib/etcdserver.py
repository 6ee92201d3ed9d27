"""A real etcd for tests: one member on free 127.0.0.1 ports in a temporary directory, TLS with client certificates.

The binary is Debian's ``etcd-server`` package (``tests/setup/install-etcd.sh``; etcd 3.4 on bookworm). The server
requires client certificates (``--client-cert-auth``), as a kubeadm control plane's etcd does, so the modules' TLS
options are exercised for real. Its gRPC gateway serves the JSON API (``/v3/kv/range``, ``/v3/kv/put``,
``/v3/kv/txn``, ``/v3/kv/deleterange``) the modules and ``secretsapi.EtcdStorage`` use.

``etcd_binary()`` finds etcd; ``require_etcd()`` skips the calling test when it is missing -- unless ``CI`` is set,
where a missing etcd is a failure (CI must run these tests).
"""

import base64
import datetime
import ipaddress
import os
import shutil
import subprocess
import time

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from heracles_testlib import free_base_port, wait_or_kill

INSTALL_HINT = "tests/setup/install-etcd.sh (apt-get install etcd-server)"


def etcd_binary():
    return shutil.which("etcd") or (os.path.exists("/usr/bin/etcd") and "/usr/bin/etcd") or None


def require_etcd():
    """The etcd binary; ``pytest.skip`` without it, except in CI (``CI`` set), where it fails the test."""
    import pytest

    binary = etcd_binary()
    if binary:
        return binary
    if os.environ.get("CI"):
        pytest.fail("etcd is not installed but CI is set: these tests must run in CI. Install it with %s" % INSTALL_HINT)
    pytest.skip("etcd is not installed (install it with %s); set CI to make this a failure" % INSTALL_HINT)
    return None


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text or "")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _cert(subject, key, issuer_name, issuer_key, ca=False, server=False):
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        # etcd 3.4's gateway dials its own gRPC server with the server certificate: it needs clientAuth as well.
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class EtcdServer:
    """``start()``/``stop()`` one etcd member; ``url``, ``ca_cert``, ``client_cert``, ``client_key``; raw key access."""

    def __init__(self, base_dir, binary=None):
        self.base_dir = str(base_dir)
        self.binary = binary or etcd_binary()
        self.proc = None
        self.log_path = os.path.join(self.base_dir, "etcd.log")
        base = free_base_port(nodes=1)
        self.client_port, self.peer_port = base, base + 1
        self.url = "https://127.0.0.1:%d" % self.client_port
        self.session = None

    def _certs(self):
        tls = os.path.join(self.base_dir, "tls")
        os.makedirs(tls, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test etcd CA")])
        ca = _cert("test etcd CA", ca_key, ca_name, ca_key, ca=True)
        self.ca_cert = _write(os.path.join(tls, "ca.crt"), ca.public_bytes(serialization.Encoding.PEM))
        for name, server in (("server", True), ("client", False)):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _cert("etcd-%s" % name, key, ca_name, ca_key, server=server)
            _write(os.path.join(tls, name + ".crt"), cert.public_bytes(serialization.Encoding.PEM))
            _write(os.path.join(tls, name + ".key"), _key_pem(key))
        self.server_cert, self.server_key = os.path.join(tls, "server.crt"), os.path.join(tls, "server.key")
        self.client_cert, self.client_key = os.path.join(tls, "client.crt"), os.path.join(tls, "client.key")

    def module_args(self):
        """The modules' etcd options for this server."""
        return dict(etcd_endpoints=[self.url], etcd_ca_cert=self.ca_cert, etcd_client_cert=self.client_cert,
                    etcd_client_key=self.client_key)

    def start(self, timeout=20):
        self._certs()
        peer = "http://127.0.0.1:%d" % self.peer_port
        cmd = [self.binary, "--name", "test", "--data-dir", os.path.join(self.base_dir, "data"),
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer,
               "--cert-file", self.server_cert, "--key-file", self.server_key, "--client-cert-auth",
               "--trusted-ca-file", self.ca_cert, "--logger", "zap", "--log-outputs", self.log_path]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.session = requests.Session()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %s; log: %s" % (self.proc.returncode, self._log_tail()))
            try:
                self.call("kv/range", {"key": b64(b"/health-probe")})
                return self
            except (requests.exceptions.RequestException, RuntimeError):
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("etcd did not answer within %ss; log: %s" % (timeout, self._log_tail()))
                time.sleep(0.1)

    def _log_tail(self):
        try:
            with open(self.log_path) as handle:
                return handle.read()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                wait_or_kill(self.proc, 10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    # -- raw access (the test's own view of etcd)
    def call(self, name, body):
        # verify per request: a Session's verify loses to REQUESTS_CA_BUNDLE in requests
        resp = self.session.post("%s/v3/%s" % (self.url, name), json=body, timeout=10, verify=self.ca_cert,
                                 cert=(self.client_cert, self.client_key))
        if resp.status_code != 200:
            raise RuntimeError("etcd %s: %s %s" % (name, resp.status_code, resp.text[:200]))
        return resp.json()

    def put(self, key, value):
        return int(self.call("kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def get(self, key):
        """``(value, mod_revision)`` or None."""
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs") or []
        return (unb64(kvs[0].get("value")), int(kvs[0]["mod_revision"])) if kvs else None

    def items(self, prefix):
        """``{key: (value, mod_revision)}`` of every key under ``prefix``."""
        end = bytearray(prefix)
        end[-1] += 1
        kvs = self.call("kv/range", {"key": b64(prefix), "range_end": b64(bytes(end))}).get("kvs") or []
        return dict((unb64(kv["key"]), (unb64(kv.get("value")), int(kv["mod_revision"]))) for kv in kvs)

    def delete_prefix(self, prefix):
        end = bytearray(prefix)
        end[-1] += 1
        self.call("kv/deleterange", {"key": b64(prefix), "range_end": b64(bytes(end))})
