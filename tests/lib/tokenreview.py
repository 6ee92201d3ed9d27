"""A small, real Kubernetes TokenReview endpoint for tests.

Kubernetes cannot run here, so the closest real boundary is the one Vault's
Kubernetes auth method talks to: ``POST /apis/authentication.k8s.io/v1/tokenreviews``
over HTTPS.  This server

* has its own CA and a server certificate for ``IP:127.0.0.1`` (hand ``ca_pem``
  to Vault as ``kubernetes_ca_cert``);
* mints service-account JWTs signed RS256 with the claims a kube-apiserver puts
  in projected tokens (``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nbf`` and the
  ``kubernetes.io`` block);
* authenticates the caller (Vault presents the reviewer JWT as a bearer token),
  then verifies the reviewed token's signature, time claims and audiences, and
  answers 201 with ``status.authenticated`` and ``status.user`` like the real API;
* records every review (never a raw token) so tests can assert Vault called it.

RS256 is implemented with ``cryptography`` (PyJWT is not a dependency): a JWS is
``b64url(header).b64url(claims).b64url(RSASSA-PKCS1-v1_5-SHA256 signature)``.
"""

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
CLOCK_SKEW = 5  # seconds of leeway on nbf/iat, as kube-apiserver allows a little


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode("ascii"))


class TokenError(Exception):
    """The token is malformed, badly signed, expired or revoked."""


def sign_rs256(key, claims, kid=None):
    """Return a compact JWS (RS256) of ``claims``."""
    header = {"alg": "RS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = "%s.%s" % (b64url(json.dumps(header, separators=(",", ":")).encode()),
                               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return "%s.%s" % (signing_input, b64url(signature))


def verify_rs256(public_key, token, now=None):
    """Check signature and time claims of ``token``; return its claims or raise TokenError."""
    try:
        head, body, sig = token.split(".")
        header = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(body))
        signature = b64url_decode(sig)
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed token: %s" % exc.__class__.__name__)
    if header.get("alg") != "RS256":
        raise TokenError("unsupported alg %r" % header.get("alg"))
    try:
        public_key.verify(signature, ("%s.%s" % (head, body)).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise TokenError("invalid signature")
    now = time.time() if now is None else now
    if "exp" not in claims or now >= claims["exp"]:
        raise TokenError("token has expired")
    if claims.get("nbf", 0) > now + CLOCK_SKEW:
        raise TokenError("token is not valid yet")
    return claims


def sa_identity(claims):
    """(namespace, name, uid) from projected-token or legacy secret-token claims."""
    k8s = claims.get("kubernetes.io") or {}
    if k8s:
        return k8s.get("namespace"), (k8s.get("serviceaccount") or {}).get("name"), \
            (k8s.get("serviceaccount") or {}).get("uid")
    return (claims.get("kubernetes.io/serviceaccount/namespace"),
            claims.get("kubernetes.io/serviceaccount/service-account.name"),
            claims.get("kubernetes.io/serviceaccount/service-account.uid"))


def _audiences(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def fingerprint(token):
    """What the request log keeps instead of a token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _make_pki(directory):
    """A CA and a server certificate for 127.0.0.1/localhost; returns (ca_pem, cert_path, key_path)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heracles test kube-apiserver CA")])
    now = _now()
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_path = os.path.join(directory, "server.pem")
    key_path = os.path.join(directory, "server-key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(os.path.join(directory, "ca.pem"), "w") as handle:
        handle.write(ca_pem)
    return ca_pem, cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "heracles-tokenreview/1"

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass  # quiet: tests read server.requests instead

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path in ("/healthz", "/livez", "/readyz"):
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, _status(404, "NotFound", "the server could not find the requested resource"))

    def do_POST(self):
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?")[0] != REVIEW_PATH:
            self._reply(404, _status(404, "NotFound", "the server could not find the requested resource"))
            return
        code, body, record = owner.review(self.headers.get("Authorization") or "", raw)
        owner.record(record)
        self._reply(code, body)


def _status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class TokenReviewServer:
    """An HTTPS TokenReview endpoint on 127.0.0.1 with its own CA and signing key.

    ``allowed_reviewers``: usernames (``system:serviceaccount:<ns>:<name>``) whose
    bearer tokens may call TokenReview; ``None`` allows any valid token (in real
    clusters that is the ``system:auth-delegator`` ClusterRole binding).
    """

    def __init__(self, issuer=DEFAULT_ISSUER, allowed_reviewers=None, host="127.0.0.1"):
        self.issuer = issuer
        self.allowed_reviewers = allowed_reviewers
        self.host = host
        self.kid = uuid.uuid4().hex[:16]
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.revoked = set()
        self.requests = []
        self._lock = threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="tokenreview-")
        self.ca_pem, cert_path, key_path = _make_pki(self._dir)
        self.ca_file = os.path.join(self._dir, "ca.pem")
        self._httpd = http.server.ThreadingHTTPServer((host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = None

    # -- lifecycle -------------------------------------------------------------
    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return "https://%s:%d" % (self.host, self.port)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="tokenreview", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def public_key_pem(self):
        """The service-account signing key, as Vault's ``pem_keys`` wants it."""
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    # -- tokens --------------------------------------------------------------------
    def mint(self, namespace, name, uid=None, audiences=None, ttl=3600, issued_at=None, issuer=None, extra=None,
             key=None):
        """A service-account JWT as a kube-apiserver would issue it (RS256)."""
        now = int(time.time() if issued_at is None else issued_at)
        claims = {
            "aud": list(audiences) if audiences is not None else [self.issuer],
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "iss": issuer or self.issuer,
            "sub": "system:serviceaccount:%s:%s" % (namespace, name),
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": name, "uid": uid or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                                            namespace + "/" + name))}},
        }
        claims.update(extra or {})
        return sign_rs256(key or self.signing_key, claims, kid=self.kid)

    def reviewer_config(self, directory):
        """A ``configure_kubernetes`` entry for this API server: its CA and a reviewer JWT (0600) in ``directory``."""
        ca_file = os.path.join(str(directory), "k8s-ca.pem")
        with open(ca_file, "w") as handle:
            handle.write(self.ca_pem)
        jwt_file = os.path.join(str(directory), "reviewer.jwt")
        with open(jwt_file, "w") as handle:
            handle.write(self.mint("kube-system", "vault-reviewer"))
        os.chmod(jwt_file, 0o600)
        return dict(kubernetes_host=self.url, kubernetes_ca_cert_file=ca_file, token_reviewer_jwt_file=jwt_file,
                    disable_local_ca_jwt=True)

    def revoke(self, token):
        """Make ``token`` fail review from now on (a deleted service account or secret)."""
        self.revoked.add(fingerprint(token))

    def verify(self, token):
        if fingerprint(token) in self.revoked:
            raise TokenError("token has been invalidated")
        return verify_rs256(self.signing_key.public_key(), token)

    # -- the API -------------------------------------------------------------------
    def review(self, authorization, raw):
        """Return (http code, body, record) for one TokenReview call."""
        record = {"at": time.time(), "reviewer": None, "subject": None, "audiences": None, "authenticated": False,
                  "code": None, "error": None}
        bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        try:
            reviewer = self.verify(bearer)
        except TokenError as exc:
            record.update(code=401, error="reviewer: %s" % exc)
            return 401, _status(401, "Unauthorized", "Unauthorized"), record
        reviewer_name = reviewer.get("sub")
        record["reviewer"] = reviewer_name
        if self.allowed_reviewers is not None and reviewer_name not in self.allowed_reviewers:
            record.update(code=403, error="reviewer not allowed")
            return 403, _status(403, "Forbidden", 'tokenreviews.authentication.k8s.io is forbidden: User "%s" '
                                                  'cannot create resource "tokenreviews"' % reviewer_name), record
        try:
            request = json.loads(raw.decode() or "{}")
        except ValueError:
            record.update(code=400, error="body is not JSON")
            return 400, _status(400, "BadRequest", "body is not JSON"), record
        spec = request.get("spec") or {}
        wanted = list(spec.get("audiences") or [])
        record["audiences"] = wanted
        body = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": {"audiences": wanted} if wanted else {},
                "status": {"user": {}}}
        try:
            claims = self.verify(spec.get("token") or "")
            namespace, name, uid = sa_identity(claims)
            if not (namespace and name and uid):
                raise TokenError("not a service-account token")
            if claims.get("iss") != self.issuer:
                raise TokenError("unexpected issuer %r" % claims.get("iss"))
            token_aud = _audiences(claims.get("aud"))
            granted = [a for a in wanted if a in token_aud] if wanted else token_aud
            if not granted:
                raise TokenError("token audiences %s do not match %s" % (token_aud, wanted))
        except TokenError as exc:
            record.update(code=201, error=str(exc))
            body["status"] = {"authenticated": False, "user": {}, "error": "[invalid bearer token, %s]" % exc}
            return 201, body, record
        username = "system:serviceaccount:%s:%s" % (namespace, name)
        record.update(code=201, subject=username, authenticated=True)
        body["status"] = {
            "authenticated": True,
            "user": {"username": username, "uid": uid,
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:%s" % namespace,
                                "system:authenticated"]},
            "audiences": granted,
        }
        return 201, body, record

    def record(self, entry):
        with self._lock:
            self.requests.append(entry)

    def reviews_of(self, username):
        with self._lock:
            return [r for r in self.requests if r["subject"] == username]
