"""A small Kubernetes API server for core/v1 Secrets (and ConfigMaps), storing them the way kube-apiserver does:
in etcd, under ``/registry/secrets/<namespace>/<name>``, through an emulated EncryptionConfiguration.

No Kubernetes can run here. For the re-encryption module the real boundaries are the HTTP API the official
``kubernetes`` client speaks and the bytes in etcd; this server joins the two:

* ``GET /api/v1/secrets``, ``GET /api/v1/namespaces/<ns>/secrets`` (``limit``/``continue`` paging, a ``SecretList``)
* ``GET|PUT /api/v1/namespaces/<ns>/secrets/<name>``; ``GET|PUT /api/v1/namespaces/<ns>/configmaps/<name>``,
  ``POST /api/v1/namespaces/<ns>/configmaps``
* ``resourceVersion`` is the etcd ``mod_revision``; a PUT whose ``resourceVersion`` is not current answers 409
  ``Conflict`` with the API server's message, and the write itself is an etcd transaction comparing
  ``mod_revision`` (what kube-apiserver's ``GuaranteedUpdate`` does).
* Storage follows ``k8s.io/apiserver/pkg/storage/value``: the object is encoded (``k8s\\x00`` + JSON here -- a
  stand-in for the protobuf envelope, which the modules never parse) and passed through the *write* provider:
  ``kms-v2`` (``k8s:enc:kms:v2:<name>:`` + a protobuf ``EncryptedObject`` {1: AES-GCM ciphertext under a DEK,
  2: keyID, 3: the DEK wrapped by a local "KMS" key}), ``aescbc`` (``k8s:enc:aescbc:v1:<key>:`` + IV + AES-CBC),
  or ``identity`` (as is). Reads accept every provider; data read with a provider that is not the write provider
  (or a KMS v2 key ID that is not current) is *stale*. A PUT of an unchanged object is written only when the
  stored data is stale -- which is why writing every Secret back re-encrypts it, and a rerun writes nothing.
* 401 without the bearer token; 404 ``Status`` for unknown paths and objects.

Test hooks: ``conflict_once`` ("ns/name"): before the next PUT of that Secret another writer changes it (an
annotation), so that PUT conflicts; ``vanish`` ("ns/name"): the Secret is deleted before the next GET or PUT of it.
``requests`` records method, path and query of every call (never a body).

Storage is a real etcd (``EtcdStorage``, through the JSON gateway with TLS client certificates) or, where no etcd is
needed (EKS, whose etcd nobody sees), ``MemoryStorage`` with the same revision semantics.
"""

import base64
import http.server
import json
import os
import re
import secrets
import threading
import urllib.parse

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from etcdserver import b64, unb64

PROTOBUF = b"k8s\x00"
_SECRETS = re.compile(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>secrets|configmaps)(?:/(?P<name>[^/]+))?$")


# ---------------------------------------------------------------- protobuf (just enough for EncryptedObject)
def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_field(number, data):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def pb_fields(data):
    """``{field number: bytes}`` of length-delimited fields (what EncryptedObject has)."""
    out, pos = {}, 0
    while pos < len(data):
        tag, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            tag |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        length, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out[tag >> 3] = data[pos:pos + length]
        pos += length
    return out


def kms_v2_value(provider_name, key_id, ciphertext):
    """A stored KMS v2 value with arbitrary ciphertext (for seeding etcd directly)."""
    return (b"k8s:enc:kms:v2:%s:" % provider_name.encode() +
            pb_field(1, ciphertext) + pb_field(2, key_id.encode()) + pb_field(3, os.urandom(40)))


# ---------------------------------------------------------------- the emulated EncryptionConfiguration
class Providers:
    """Write with ``write`` (kms-v2, aescbc or identity); read all of them."""

    def __init__(self, write="kms-v2", kms_name="heracles-kms", kms_key_id="kms-key-1", aescbc_key="key1"):
        self.write = write
        self.kms_name = kms_name
        self.kms_key_id = kms_key_id
        self.kek = dict()  # key ID -> the "KMS" key that wraps DEKs
        self.aescbc_key = aescbc_key
        self.aescbc_secret = os.urandom(32)

    def _kek(self, key_id):
        return self.kek.setdefault(key_id, AESGCM.generate_key(256))

    def encode(self, plain, provider=None):
        provider = provider or self.write
        if provider == "identity":
            return plain
        if provider == "aescbc":
            iv = os.urandom(16)
            padder = padding.PKCS7(128).padder()
            enc = Cipher(algorithms.AES(self.aescbc_secret), modes.CBC(iv)).encryptor()
            body = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
            return b"k8s:enc:aescbc:v1:%s:" % self.aescbc_key.encode() + iv + body
        if provider == "kms-v2":
            dek = AESGCM.generate_key(256)
            nonce, wrap_nonce = os.urandom(12), os.urandom(12)
            data = nonce + AESGCM(dek).encrypt(nonce, plain, None)
            wrapped = wrap_nonce + AESGCM(self._kek(self.kms_key_id)).encrypt(wrap_nonce, dek, None)
            return (b"k8s:enc:kms:v2:%s:" % self.kms_name.encode() +
                    pb_field(1, data) + pb_field(2, self.kms_key_id.encode()) + pb_field(3, wrapped))
        raise ValueError(provider)

    def decode(self, stored):
        """``(plain, stale)``."""
        if stored.startswith(b"k8s:enc:aescbc:v1:"):
            rest = stored[len(b"k8s:enc:aescbc:v1:"):]
            _name, _sep, rest = rest.partition(b":")
            iv, body = rest[:16], rest[16:]
            dec = Cipher(algorithms.AES(self.aescbc_secret), modes.CBC(iv)).decryptor()
            unpadder = padding.PKCS7(128).unpadder()
            plain = unpadder.update(dec.update(body) + dec.finalize()) + unpadder.finalize()
            return plain, self.write != "aescbc"
        if stored.startswith(b"k8s:enc:kms:v2:"):
            rest = stored[len(b"k8s:enc:kms:v2:"):]
            name, _sep, rest = rest.partition(b":")
            fields = pb_fields(rest)
            key_id = fields[2].decode()
            wrapped = fields[3]
            dek = AESGCM(self._kek(key_id)).decrypt(wrapped[:12], wrapped[12:], None)
            plain = AESGCM(dek).decrypt(fields[1][:12], fields[1][12:], None)
            stale = self.write != "kms-v2" or name.decode() != self.kms_name or key_id != self.kms_key_id
            return plain, stale
        return stored, self.write != "identity"


def encode_object(obj):
    body = dict(obj)
    body["metadata"] = dict(body.get("metadata") or {})
    body["metadata"].pop("resourceVersion", None)
    return PROTOBUF + json.dumps(body, sort_keys=True).encode()


def decode_object(plain):
    assert plain.startswith(PROTOBUF), plain[:4]
    return json.loads(plain[len(PROTOBUF):].decode())


# ---------------------------------------------------------------- storage
class MemoryStorage:
    def __init__(self):
        self.revision = 1
        self.kv = {}
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            return self.kv.get(key)

    def put(self, key, value, expect=None):
        """Write when the key's mod_revision is ``expect`` (0: must not exist; None: always); new revision or None."""
        with self.lock:
            current = self.kv.get(key)
            if expect is not None and (current[1] if current else 0) != expect:
                return None
            self.revision += 1
            self.kv[key] = (value, self.revision)
            return self.revision

    def delete(self, key):
        with self.lock:
            self.revision += 1
            self.kv.pop(key, None)

    def range(self, prefix):
        with self.lock:
            return sorted((k, v[0], v[1]) for k, v in self.kv.items() if k.startswith(prefix)), self.revision


class EtcdStorage:
    """The same operations on a real etcd (``etcdserver.EtcdServer``) through its JSON gateway."""

    def __init__(self, server):
        self.server = server

    def get(self, key):
        return self.server.get(key)

    def put(self, key, value, expect=None):
        if expect is None:
            return self.server.put(key, value)
        reply = self.server.call("kv/txn", {
            "compare": [{"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(expect)}],
            "success": [{"request_put": {"key": b64(key), "value": b64(value)}}]})
        return int(reply["header"]["revision"]) if reply.get("succeeded") else None

    def delete(self, key):
        self.server.call("kv/deleterange", {"key": b64(key)})

    def range(self, prefix):
        end = bytearray(prefix)
        end[-1] += 1
        reply = self.server.call("kv/range", {"key": b64(prefix), "range_end": b64(bytes(end))})
        kvs = reply.get("kvs") or []
        return ([(unb64(kv["key"]), unb64(kv.get("value")), int(kv["mod_revision"])) for kv in kvs],
                int(reply["header"]["revision"]))


# ---------------------------------------------------------------- the API
def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


KINDS = {"secrets": "Secret", "configmaps": "ConfigMap"}


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method):
        api = self.server.api
        path, _sep, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api.record(method, path, query)
        if self.headers.get("Authorization") != "Bearer " + api.token:
            return self._reply(401, status(401, "Unauthorized", "Unauthorized"))
        code, reply = api.answer(method, path, urllib.parse.parse_qs(query), body)
        return self._reply(code, reply)

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_POST(self):
        self._handle("POST")


class SecretsApi:
    def __init__(self, storage, providers=None, prefix=b"/registry"):
        self.storage = storage
        self.providers = providers or Providers()
        self.prefix = prefix
        self.token = secrets.token_urlsafe(16)
        self.requests = []
        self.conflict_once = set()
        self.vanish = set()
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.api = self
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._httpd.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="secretsapi", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def kubeconfig(self, path):
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
                  "clusters": [{"name": "test", "cluster": {"server": self.url}}],
                  "users": [{"name": "test", "user": {"token": self.token}}],
                  "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}
        with open(path, "w") as handle:
            json.dump(config, handle)
        return path

    def record(self, method, path, query):
        with self._lock:
            self.requests.append(dict(method=method, path=path, query=query))

    def calls(self, method, path_part=""):
        return [r for r in self.requests if r["method"] == method and path_part in r["path"]]

    # -- storage helpers (also used by tests to seed and inspect)
    def key(self, plural, namespace, name):
        return b"%s/%s/%s/%s" % (self.prefix, plural.encode(), namespace.encode(), name.encode())

    def create(self, obj, provider=None, plural="secrets"):
        """Store ``obj`` directly, written by ``provider`` (default: the write provider)."""
        meta = obj["metadata"]
        value = self.providers.encode(encode_object(obj), provider if plural == "secrets" else "identity")
        return self.storage.put(self.key(plural, meta["namespace"], meta["name"]), value)

    def load(self, plural, namespace, name):
        """``(object with resourceVersion, stale)`` or ``(None, False)``."""
        found = self.storage.get(self.key(plural, namespace, name))
        if found is None:
            return None, False
        value, revision = found
        plain, stale = self.providers.decode(value) if plural == "secrets" else (value, False)
        obj = decode_object(plain)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        obj["kind"], obj["apiVersion"] = KINDS[plural], "v1"
        return obj, stale

    # -- request handling
    def answer(self, method, path, query, body):
        match = _SECRETS.match(path)
        if not match:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        namespace, plural, name = match.group("ns"), match.group("plural"), match.group("name")
        if name is None and method == "GET":
            return self._list(plural, namespace, query)
        if name is None and method == "POST" and namespace:
            return self._create(plural, namespace, json.loads(body or b"{}"))
        if name is None or not namespace:
            return 405, status(405, "MethodNotAllowed", "method not allowed")
        ref = "%s/%s" % (namespace, name)
        if plural == "secrets" and ref in self.vanish:
            self.vanish.discard(ref)
            self.storage.delete(self.key(plural, namespace, name))
        if method == "GET":
            obj, _stale = self.load(plural, namespace, name)
            if obj is None:
                return 404, status(404, "NotFound", '%s "%s" not found' % (plural, name))
            return 200, obj
        if method == "PUT":
            return self._update(plural, namespace, name, json.loads(body or b"{}"))
        return 405, status(405, "MethodNotAllowed", "method not allowed")

    def _list(self, plural, namespace, query):
        prefix = self.prefix + b"/" + plural.encode() + b"/" + (namespace.encode() + b"/" if namespace else b"")
        items, revision = self.storage.range(prefix)
        start = unb64(query.get("continue", [""])[0]) if query.get("continue") else b""
        items = [item for item in items if item[0] > start]
        limit = int(query.get("limit", ["0"])[0] or 0)
        more = bool(limit) and len(items) > limit
        items = items[:limit] if limit else items
        out = []
        for key, value, mod in items:
            plain, _stale = self.providers.decode(value) if plural == "secrets" else (value, False)
            obj = decode_object(plain)
            obj.setdefault("metadata", {})["resourceVersion"] = str(mod)
            out.append(obj)  # list items carry no kind/apiVersion, as the real API's
        meta = {"resourceVersion": str(revision)}
        if more:
            meta["continue"] = b64(items[-1][0])
        return 200, {"kind": KINDS[plural] + "List", "apiVersion": "v1", "metadata": meta, "items": out}

    def _create(self, plural, namespace, obj):
        name = (obj.get("metadata") or {}).get("name")
        obj = dict(obj)
        obj["metadata"] = dict(obj["metadata"], namespace=namespace)
        value = self.providers.encode(encode_object(obj)) if plural == "secrets" else encode_object(obj)
        if self.storage.put(self.key(plural, namespace, name), value, expect=0) is None:
            return 409, status(409, "AlreadyExists", '%s "%s" already exists' % (plural, name))
        created, _stale = self.load(plural, namespace, name)
        return 201, created

    def _update(self, plural, namespace, name, obj):
        ref = "%s/%s" % (namespace, name)
        if plural == "secrets" and ref in self.conflict_once:
            self.conflict_once.discard(ref)
            other, _stale = self.load(plural, namespace, name)
            if other is not None:  # another writer: an annotation change, stored with the write provider
                other["metadata"].setdefault("annotations", {})["touched-by"] = "another-controller"
                self.storage.put(self.key(plural, namespace, name), self.providers.encode(encode_object(other)))
        current, stale = self.load(plural, namespace, name)
        if current is None:
            return 404, status(404, "NotFound", '%s "%s" not found' % (plural, name))
        meta = obj.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            return 400, status(400, "BadRequest", "the name of the object does not match the name on the URL")
        wanted = meta.get("resourceVersion")
        conflict = status(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                                           'please apply your changes to the latest version and try again'
                          % (plural, name))
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            return 409, conflict
        body = dict(obj)
        body.pop("kind", None)
        body.pop("apiVersion", None)
        same = encode_object(body) == encode_object(dict((k, v) for k, v in current.items()
                                                         if k not in ("kind", "apiVersion")))
        if same and not stale:
            return 200, current  # nothing to write: kube-apiserver skips the etcd write too
        plain = encode_object(body)
        value = self.providers.encode(plain) if plural == "secrets" else plain
        if self.storage.put(self.key(plural, namespace, name), value,
                            expect=int(current["metadata"]["resourceVersion"])) is None:
            return 409, conflict
        updated, _stale = self.load(plural, namespace, name)
        return 200, updated


def secret(namespace, name, data, annotations=None):
    """A Secret object with ``data`` (str values, base64-encoded here)."""
    meta = {"name": name, "namespace": namespace, "uid": secrets.token_hex(8)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta,
            "data": dict((k, base64.b64encode(v.encode()).decode()) for k, v in data.items())}
