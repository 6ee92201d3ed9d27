# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core/v1 Secrets (and the re-encryption marker ConfigMap) through the official ``kubernetes`` client: one
function per API call, and the rewrite that re-encrypts a Secret.

Re-encryption is what the Kubernetes documentation prescribes ("Ensure all Secrets are encrypted":
``kubectl get secrets --all-namespaces -o json | kubectl replace -f -``): each Secret is written back unchanged
with ``PUT`` and its ``resourceVersion``. kube-apiserver re-encodes it through the first provider of its
EncryptionConfiguration whenever the stored bytes came from another provider or key (the transformer marks them
stale), so the new bytes in etcd are encrypted with the current key; an unchanged object already written with that
provider and key is not written again.

Objects travel as the API's own JSON (``_preload_content=False``): what is read is what is written back, with no
round trip through the client's models. Secret data is held in memory only between that read and that write; it
is never logged, returned or put into an exception (see :func:`_scrub`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import time

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError

# eso_kube's connection options without ESO's api_version
KUBE_SPEC = dict((k, v) for k, v in eso_kube.KUBE_SPEC.items() if k != "api_version")

DEFAULT_PAGE_SIZE = 500
DEFAULT_RETRIES = 5
REQUEST_TIMEOUT = 60
TRANSIENT = (429, 500, 502, 503, 504)
RBAC_HINT = ("The identity in the kubeconfig needs list, get and update on secrets in every namespace (a "
             "ClusterRole), and get/create/update on the marker ConfigMap; re-encryption runs as a cluster admin")


class KubeError(HeraclesError):
    """A Kubernetes API call failed; ``hint`` says what to do."""


def core_api(kubeconfig=None, context=None):
    """``CoreV1Api`` from the kubeconfig/context (or in-cluster): the shared loader of ``eso_kube``."""
    try:
        client = eso_kube.api_client(kubeconfig, context)
    except eso_kube.KubeError as exc:
        raise KubeError(exc.message, "Set kubeconfig (or KUBECONFIG) and context to the cluster whose Secrets are to "
                                     "be re-encrypted")
    from kubernetes import client as k8s_client

    return k8s_client.CoreV1Api(client)


def _scrub(text, obj):
    """``text`` unless it quotes any of ``obj``'s data values (base64 or decoded), which the API never should."""
    if not text or not isinstance(obj, dict):
        return text
    for field in ("data", "stringData"):
        for value in (obj.get(field) or {}).values():
            if not isinstance(value, str) or len(value) < 4:
                continue
            candidates = [value]
            if field == "data":
                try:
                    candidates.append(base64.b64decode(value).decode("utf-8", "replace"))
                except (ValueError, TypeError):
                    pass
            if any(c and len(c) >= 4 and c in text for c in candidates):
                return "(message withheld: it quotes Secret data)"
    return text


def _status_message(exc):
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (ValueError, TypeError):
        return None
    return body.get("message") if isinstance(body, dict) else None


def describe_error(exc, what, obj=None):
    """A :class:`KubeError` for an ``ApiException`` (or a connection error) of ``what``; never quotes Secret data."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or exc.__class__.__name__
    message = _scrub(_status_message(exc), obj)
    detail = "%s %s" % (status, reason) if status else reason
    if message:
        detail += ": %s" % message
    if status == 401:
        return KubeError("%s: not authenticated (%s)" % (what, detail),
                         "The kubeconfig's credentials are missing or expired: refresh them (aws eks update-kubeconfig, "
                         "or a new token) and rerun")
    if status == 403:
        return KubeError("%s: forbidden (%s)" % (what, detail), RBAC_HINT)
    if status:
        return KubeError("%s: HTTP %s" % (what, detail), "Check the Kubernetes API server and rerun (the run is safe to "
                                                         "repeat: a rewritten Secret is not rewritten again)")
    return KubeError("%s: %s" % (what, _scrub(str(exc)[:300], obj)),
                     "Check the API server address in the kubeconfig and the network")


def _json(resp):
    return json.loads(resp.data.decode("utf-8") if hasattr(resp, "data") else resp)


def list_secrets(core, namespace=None, page_size=DEFAULT_PAGE_SIZE):
    """``GET /api/v1[/namespaces/<ns>]/secrets?limit=..&continue=..``: yields each Secret as the API's JSON."""
    token = None
    while True:
        kwargs = dict(limit=page_size, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        if token:
            kwargs["_continue"] = token
        try:
            if namespace:
                resp = core.list_namespaced_secret(namespace, **kwargs)
            else:
                resp = core.list_secret_for_all_namespaces(**kwargs)
            page = _json(resp)
        except Exception as exc:  # noqa: BLE001 - ApiException, urllib3 errors alike
            raise describe_error(exc, "Listing Secrets%s" % (" in %s" % namespace if namespace else ""))
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def read_secret(core, namespace, name):
    """``GET /api/v1/namespaces/<ns>/secrets/<name>``; None when it does not exist."""
    try:
        return _json(core.read_namespaced_secret(name, namespace, _preload_content=False,
                                                 _request_timeout=REQUEST_TIMEOUT))
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status", None) == 404:
            return None
        raise


def replace_secret(core, namespace, name, obj):
    """``PUT /api/v1/namespaces/<ns>/secrets/<name>`` with ``obj`` as read (its ``resourceVersion`` included)."""
    body = dict(obj)
    body["apiVersion"], body["kind"] = "v1", "Secret"
    return _json(core.replace_namespaced_secret(name, namespace, body, _preload_content=False,
                                                _request_timeout=REQUEST_TIMEOUT))


def rewrite_secret(core, namespace, name, obj=None, retries=DEFAULT_RETRIES, sleep=time.sleep):
    """Write one Secret back unchanged; ``obj`` is the Secret as listed, or None to read it first.

    Returns ``(outcome, conflicts)``: outcome ``rewritten`` or ``gone`` (deleted meanwhile: nothing to
    re-encrypt). A 409 conflict (someone wrote it since it was read) re-reads and retries; 429/5xx and dropped
    connections retry with backoff. Raises :class:`KubeError` when the retries run out or the API refuses.
    """
    conflicts = 0
    what = "Rewriting Secret %s/%s" % (namespace, name)
    for attempt in range(retries + 1):
        try:
            if obj is None:
                obj = read_secret(core, namespace, name)
                if obj is None:
                    return "gone", conflicts
            replace_secret(core, namespace, name, obj)
            return "rewritten", conflicts
        except Exception as exc:  # noqa: BLE001
            status = getattr(exc, "status", None)
            if status == 404:
                return "gone", conflicts
            if status == 409:
                conflicts += 1
                obj = None
                continue
            if (status in TRANSIENT or status is None and _is_connection_error(exc)) and attempt < retries:
                sleep(min(0.2 * (2 ** attempt), 5.0))
                continue
            raise describe_error(exc, what, obj)
    raise KubeError("%s: still conflicting after %d attempts (%d conflicts)" % (what, retries + 1, conflicts),
                    "Something rewrites this Secret continuously (a controller?): rerun later; a Secret written by "
                    "anyone is re-encrypted by that write anyway")


def _is_connection_error(exc):
    name = exc.__class__.__name__
    return any(word in name for word in ("MaxRetryError", "ProtocolError", "ConnectionError", "ReadTimeout",
                                         "NewConnectionError", "ConnectTimeout"))


# ---------------------------------------------------------------- the marker ConfigMap (EKS)
MARKER_PURPOSE = "Kubernetes Secrets re-encrypted under keyArn (heracles.secrets.k8s_secrets_reencrypt)"


def read_marker(core, namespace, name):
    """The marker ConfigMap's ``(data, resourceVersion)``; ``(None, None)`` when there is none."""
    try:
        obj = _json(core.read_namespaced_config_map(name, namespace, _preload_content=False,
                                                    _request_timeout=REQUEST_TIMEOUT))
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status", None) == 404:
            return None, None
        raise describe_error(exc, "Reading the re-encryption marker ConfigMap %s/%s" % (namespace, name))
    return dict(obj.get("data") or {}), (obj.get("metadata") or {}).get("resourceVersion")


def write_marker(core, namespace, name, data, resource_version=None):
    """Create the marker ConfigMap, or replace it (``resource_version`` of the one read)."""
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "heracles.secrets"},
                         "annotations": {"heracles.secrets/purpose": MARKER_PURPOSE}},
            "data": dict((k, str(v)) for k, v in data.items())}
    try:
        if resource_version:
            body["metadata"]["resourceVersion"] = resource_version
            core.replace_namespaced_config_map(name, namespace, body, _preload_content=False,
                                               _request_timeout=REQUEST_TIMEOUT)
        else:
            core.create_namespaced_config_map(namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        raise describe_error(exc, "Writing the re-encryption marker ConfigMap %s/%s" % (namespace, name))
