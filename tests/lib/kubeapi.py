"""A small Kubernetes API server for the External Secrets resources, for tests.

No Kubernetes can run here, so the closest real boundary for the ESO modules is the HTTP API the official
``kubernetes`` Python client talks to. This server answers the calls those modules make, with the shapes
and status codes of a kube-apiserver that has ESO 0.17+ installed (``external-secrets.io/v1`` only):

* ``GET /apis/external-secrets.io/v1/[namespaces/<ns>/]<plural>``  lists (``<Kind>List``)
* ``GET|PATCH /apis/external-secrets.io/v1/namespaces/<ns>/externalsecrets/<name>``  (PATCH: JSON merge
  patch only, ``application/merge-patch+json``, else 415; bumps ``resourceVersion``)
* ``GET /api/v1/namespaces/<ns>/events?fieldSelector=involvedObject.kind=ExternalSecret``
* ``GET|PATCH /apis/apps/v1/namespaces/<ns>/<deployments|statefulsets|daemonsets>/<name>`` (PATCH: merge patch
  only, as above) -- the workloads ``kubectl rollout restart`` patches
* 401 without the bearer token, 404 ``Status`` for unknown paths, versions and objects.

``emulate_eso()`` stands in for the ESO controller, which does not run here: when a PATCH changes an
ExternalSecret's ``force-sync`` annotation, ESO reconciles it -- after ``delay`` seconds this server sets
``status.refreshTime`` to that moment (RFC 3339, whole seconds, as ESO writes it) and the Ready condition to
True/SecretSynced. ExternalSecrets named in ``stuck`` ("namespace/name") instead turn Ready=False with ESO's
message for a provider error and keep their refreshTime, as when the SecretStore cannot read Vault.

Every request is recorded (method, path, content type) so tests can assert what was, and was not, sent.
``kubeconfig(path)`` writes a kubeconfig that points the client here.
"""

import copy
import http.server
import json
import re
import secrets
import threading
import time

GROUP = "external-secrets.io"
SERVED = ("v1",)
PLURALS = {"externalsecrets": "ExternalSecret", "secretstores": "SecretStore", "clustersecretstores": "ClusterSecretStore"}
CLUSTER_SCOPED = ("clustersecretstores",)
_CUSTOM = re.compile(r"^/apis/%s/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?$"
                     % re.escape(GROUP))
_EVENTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")
APPS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}
_APPS = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)/(?P<name>[^/]+)$")
FORCE_SYNC = "force-sync"
PROVIDER_ERROR = "could not get secret data from provider"


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


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
        api.record(method, path, query, self.headers.get("Content-Type"))
        if self.headers.get("Authorization") != "Bearer " + api.token:
            return self._reply(401, status(401, "Unauthorized", "Unauthorized"))
        code, reply = api.answer(method, path, query, self.headers.get("Content-Type"), body)
        return self._reply(code, reply)

    def do_GET(self):
        self._handle("GET")

    def do_PATCH(self):
        self._handle("PATCH")


class KubeApi:
    def __init__(self, objects):
        self.token = secrets.token_urlsafe(16)
        self.objects = []
        self.events = []
        for obj in objects:
            (self.events if obj.get("kind") == "Event" else self.objects).append(copy.deepcopy(obj))
        self.requests = []
        self.eso_delay = None  # emulate_eso() sets it
        self.stuck = set()
        self._timers = []
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.api = self
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._httpd.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kubeapi", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        for timer in self._timers:
            timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def kubeconfig(self, path, token=None):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": token or self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        }
        with open(path, "w") as handle:
            json.dump(config, handle)
        return path

    def record(self, method, path, query, content_type):
        with self._lock:
            self.requests.append(dict(method=method, path=path, query=query, content_type=content_type))

    def patches(self):
        return [r for r in self.requests if r["method"] == "PATCH"]

    def emulate_eso(self, delay=0.3, stuck=()):
        """Reconcile ExternalSecrets whose force-sync annotation a PATCH changes, like ESO's controller."""
        self.eso_delay = delay
        self.stuck = set(stuck)
        return self

    def _reconcile(self, namespace, name):
        with self._lock:
            obj = self.find("ExternalSecret", namespace, name)
            if obj is None:
                return
            status = obj.setdefault("status", {})
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            stuck = "%s/%s" % (namespace, name) in self.stuck
            ready = dict(type="Ready", status="False" if stuck else "True",
                         reason="SecretSyncedError" if stuck else "SecretSynced",
                         message=PROVIDER_ERROR if stuck else "secret synced", lastTransitionTime=now)
            if not stuck:
                status["refreshTime"] = now
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"] + [ready]
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(int(meta.get("resourceVersion") or "0") + 1)

    def find(self, kind, namespace, name):
        for obj in self.objects:
            meta = obj.get("metadata") or {}
            if obj.get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace:
                return obj
        return None

    def answer(self, method, path, query, content_type, body):
        match = _CUSTOM.match(path)
        if match:
            return self._custom(method, match.groupdict(), content_type, body)
        match = _APPS.match(path)
        if match:
            return self._apps(method, match.groupdict(), content_type, body)
        match = _EVENTS.match(path)
        if match and method == "GET":
            wanted = "involvedObject.kind=ExternalSecret" in query.replace("%3D", "=")
            items = [e for e in self.events if (e.get("involvedObject") or {}).get("namespace") == match.group("ns")
                     and (not wanted or (e.get("involvedObject") or {}).get("kind") == "ExternalSecret")]
            return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items}
        return 404, status(404, "NotFound", "the server could not find the requested resource")

    def _custom(self, method, parts, content_type, body):
        plural, version, namespace, name = parts["plural"], parts["version"], parts["ns"], parts["name"]
        if version not in SERVED or plural not in PLURALS:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        kind = PLURALS[plural]
        if name is None:
            if method != "GET":
                return 405, status(405, "MethodNotAllowed", "method not allowed")
            items = [o for o in self.objects if o.get("kind") == kind and
                     (namespace is None or plural in CLUSTER_SCOPED or (o.get("metadata") or {}).get("namespace") == namespace)]
            return 200, {"kind": kind + "List", "apiVersion": "%s/%s" % (GROUP, version), "metadata": {},
                         "items": copy.deepcopy(items)}
        code, reply, previous = self._object(method, kind, namespace, name, content_type, body,
                                             "%s.%s" % (plural, GROUP))
        if code == 200 and method == "PATCH" and kind == "ExternalSecret" and self.eso_delay is not None:
            before = (previous.get("metadata") or {}).get("annotations") or {}
            after = (reply.get("metadata") or {}).get("annotations") or {}
            if before.get(FORCE_SYNC) != after.get(FORCE_SYNC):
                timer = threading.Timer(self.eso_delay, self._reconcile, (namespace, name))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        return code, reply

    def _apps(self, method, parts, content_type, body):
        if parts["plural"] not in APPS:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        code, reply, _previous = self._object(method, APPS[parts["plural"]], parts["ns"], parts["name"], content_type,
                                              body, "%s.apps" % parts["plural"])
        return code, reply

    def _object(self, method, kind, namespace, name, content_type, body, resource):
        """GET or merge-PATCH one namespaced object: (code, reply, the object before)."""
        with self._lock:
            obj = self.find(kind, namespace, name)
            if obj is None:
                return 404, status(404, "NotFound", '%s "%s" not found' % (resource, name)), None
            if method == "GET":
                return 200, copy.deepcopy(obj), obj
            if (content_type or "").split(";")[0] != "application/merge-patch+json":
                return 415, status(415, "UnsupportedMediaType", "the body of the request was in an unknown format"), obj
            patched = merge_patch(obj, json.loads(body.decode() or "{}"))
            meta = patched.setdefault("metadata", {})
            meta["resourceVersion"] = str(int(meta.get("resourceVersion") or "0") + 1)
            self.objects[self.objects.index(obj)] = patched
            return 200, copy.deepcopy(patched), obj
