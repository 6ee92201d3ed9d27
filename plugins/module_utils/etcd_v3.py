# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only etcd v3 access through etcd's gRPC gateway (JSON over HTTP(S)): no etcd client library.

etcd (3.4 and later) serves its v3 API as JSON at ``/v3/...`` on every client URL; keys and values travel
base64-encoded and 64-bit numbers as strings. The only call used here is ``POST /v3/kv/range``, paged with
``limit`` and pinned to the first page's ``revision`` so one listing is one consistent snapshot.

Values never leave :meth:`EtcdGateway.scan` except to the caller's ``inspect`` function, and are never part of
an exception: error messages carry the endpoint, the HTTP status and etcd's own error text only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError

try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover
    requests = None
    HAS_REQUESTS = False

DEFAULT_API_PREFIX = "/v3"
DEFAULT_PAGE_SIZE = 500
DEFAULT_TIMEOUT = 30

ETCD_SPEC = dict(
    etcd_endpoints=dict(type="list", elements="str"),
    etcd_ca_cert=dict(type="path"),
    etcd_client_cert=dict(type="path"),
    etcd_client_key=dict(type="path", no_log=False),
    etcd_prefix=dict(type="str", default="/registry"),
    etcd_api_prefix=dict(type="str", default=DEFAULT_API_PREFIX),
    etcd_page_size=dict(type="int", default=DEFAULT_PAGE_SIZE),
    etcd_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
)

TLS_HINT = ("Set etcd_ca_cert to the etcd CA and etcd_client_cert/etcd_client_key to a client certificate it trusts "
            "(kubeadm: /etc/kubernetes/pki/etcd/ca.crt and /etc/kubernetes/pki/apiserver-etcd-client.crt/.key)")


class EtcdError(HeraclesError):
    """etcd could not be read; ``hint`` says what to do."""


def prefix_range_end(prefix):
    """The etcd ``range_end`` that makes ``[prefix, range_end)`` every key starting with ``prefix`` (bytes)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\x00"  # every key


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    return base64.b64decode(text or "")


def check_endpoint(url):
    """Raise :class:`EtcdError` unless ``url`` is ``http(s)://host:port``."""
    if not isinstance(url, str) or not (url.startswith("https://") or url.startswith("http://")) or \
            len(url.split("://", 1)[1].strip("/")) == 0:
        raise EtcdError("etcd endpoint %r is not a URL with a scheme" % (url,),
                        "Give etcd_endpoints as https://<host>:2379 (the etcd client URLs, as in kube-apiserver "
                        "--etcd-servers); nothing was read")
    return url.rstrip("/")


class EtcdGateway:
    """The JSON gateway of one etcd cluster: ``endpoints`` are tried in order until one answers."""

    def __init__(self, endpoints, ca_cert=None, client_cert=None, client_key=None, api_prefix=DEFAULT_API_PREFIX,
                 timeout=DEFAULT_TIMEOUT, session=None):
        if not HAS_REQUESTS:
            raise EtcdError("Reading etcd needs the requests Python library on the host that runs the module",
                            "pip install requests (it is in requirements.txt)")
        if not endpoints:
            raise EtcdError("etcd_endpoints is empty", "Give the etcd client URLs, for example https://10.0.0.10:2379")
        self.endpoints = [check_endpoint(url) for url in endpoints]
        if bool(client_cert) != bool(client_key):
            raise EtcdError("etcd_client_cert and etcd_client_key go together", TLS_HINT)
        self.api_prefix = "/" + (api_prefix or DEFAULT_API_PREFIX).strip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        # Given per request: a Session's own verify loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in requests.
        self.verify = ca_cert if ca_cert else True
        self.cert = (client_cert, client_key) if client_cert else None
        self.endpoint = None  # the one that answered last

    def _post(self, call, body):
        """``POST <endpoint><api_prefix>/<call>`` on the first endpoint that answers; the decoded JSON."""
        errors = []
        for url in ([self.endpoint] if self.endpoint else []) + [u for u in self.endpoints if u != self.endpoint]:
            try:
                resp = self.session.post("%s%s/%s" % (url, self.api_prefix, call), data=json.dumps(body),
                                         headers={"Content-Type": "application/json"}, timeout=self.timeout,
                                         verify=self.verify, cert=self.cert)
            except requests.exceptions.SSLError as exc:
                raise EtcdError("etcd at %s: TLS failed (%s)" % (url, _short(exc)), TLS_HINT)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                errors.append("%s: %s" % (url, _short(exc)))
                continue
            self.endpoint = url
            return self._decode(url, call, resp)
        raise EtcdError("No etcd endpoint answered (%s)" % "; ".join(errors),
                        "Check etcd_endpoints (the client URLs, port 2379 by default) and that this host can reach them")

    def _decode(self, url, call, resp):
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict):
            return body
        message = None
        if isinstance(body, dict):
            message = body.get("message") or body.get("error")
        what = "etcd at %s answered %s to %s/%s" % (url, resp.status_code, self.api_prefix, call)
        if message:
            what += " (%s)" % _short(message)
        if resp.status_code == 404 or (resp.status_code == 200 and body is None):
            raise EtcdError(what, "This is not etcd's v3 JSON gateway: etcd 3.4+ serves /v3, 3.3 /v3beta "
                                  "(set etcd_api_prefix); check that the URL is an etcd client URL")
        if resp.status_code in (401, 403) or "user name is empty" in (message or "") or "permission denied" in (message or ""):
            raise EtcdError(what, "etcd requires authentication or denied the read: use a client certificate whose "
                                  "user may read the keys (etcd_client_cert/etcd_client_key)")
        if "compacted" in (message or ""):
            raise EtcdError(what, "etcd compacted the revision this scan reads while it ran: rerun (a larger "
                                  "etcd_page_size makes the scan shorter)")
        raise EtcdError(what, "Check etcd's health (etcdctl endpoint health) and retry")

    def scan(self, prefix, inspect, page_size=DEFAULT_PAGE_SIZE):
        """Call ``inspect(key_bytes, value_bytes, mod_revision)`` for every key under ``prefix`` (bytes).

        Pages of ``page_size`` keys; every page after the first is read at the first page's revision, so the
        scan sees one consistent snapshot. Returns that revision.
        """
        if page_size < 1:
            raise EtcdError("etcd_page_size must be at least 1", "Use the default (%d)" % DEFAULT_PAGE_SIZE)
        start, end = prefix, prefix_range_end(prefix)
        revision = None
        while True:
            body = {"key": _b64(start), "range_end": _b64(end), "limit": str(page_size)}
            if revision is not None:
                body["revision"] = str(revision)
            reply = self._post("kv/range", body)
            if revision is None:
                revision = int((reply.get("header") or {}).get("revision") or 0)
            kvs = reply.get("kvs") or []
            last = None
            for kv in kvs:
                last = _unb64(kv.get("key"))
                inspect(last, _unb64(kv.get("value")), int(kv.get("mod_revision") or 0))
            if not reply.get("more") or last is None:
                return revision
            start = last + b"\x00"

    def get(self, key):
        """``(value_bytes, mod_revision)`` of one key (bytes), or ``None`` when it does not exist."""
        reply = self._post("kv/range", {"key": _b64(key)})
        kvs = reply.get("kvs") or []
        if not kvs:
            return None
        return _unb64(kvs[0].get("value")), int(kvs[0].get("mod_revision") or 0)


def _short(exc, limit=240):
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
