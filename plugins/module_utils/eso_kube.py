# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thin Kubernetes layer of the ESO modules: one function per API call, through the
``kubernetes`` Python client's ``CustomObjectsApi``. Every function takes that API object, so tests
hand in a fake one (no Kubernetes API server can run where the tests run).

Decisions live in ``eso.py`` (diagnosis) and in :func:`plan_force_sync` (which annotations to set).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError
from ansible_collections.heracles.secrets.plugins.module_utils.eso import (
    FORCE_SYNC_ANNOTATION, GROUP, PLURALS, flatten)

try:
    import importlib.util
    # Imported only when the API is used (it costs about half a second of CPU per task): recorded objects and
    # the decisions here do not need it.
    HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None
except ImportError:  # pragma: no cover
    HAS_KUBERNETES = False

FIELD_MANAGER = "heracles-eso"

KUBE_SPEC = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    api_version=dict(type="str", default="v1", choices=["v1", "v1beta1"]),
)


class KubeError(HeraclesError):
    """A Kubernetes API call failed; ``hint`` says what to do."""


def api_client(kubeconfig=None, context=None):
    """An ``ApiClient`` from ``kubeconfig``/``context``, else in-cluster config, else ``KUBECONFIG``/``~/.kube/config``."""
    if not HAS_KUBERNETES:
        raise KubeError("The kubernetes Python client is not installed on the host that runs the module",
                        "pip install kubernetes (it is in requirements.txt)")
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    try:
        if not kubeconfig and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config()
            return k8s_client.ApiClient()
        return k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # noqa: BLE001 - ConfigException and file errors alike
        raise KubeError("Cannot load the Kubernetes configuration (%s)" % exc,
                        "Set kubeconfig (or KUBECONFIG) and context to the cluster ESO runs in, or give recorded "
                        "objects instead (objects/objects_file)")


def custom_objects_api(kubeconfig=None, context=None, client=None):
    """``CustomObjectsApi`` (ExternalSecrets and stores)."""
    from kubernetes import client as k8s_client

    return k8s_client.CustomObjectsApi(client or api_client(kubeconfig, context))


def core_api(kubeconfig=None, context=None, client=None):
    """``CoreV1Api`` (events)."""
    from kubernetes import client as k8s_client

    return k8s_client.CoreV1Api(client or api_client(kubeconfig, context))


def describe_api_error(exc, what):
    """Message + hint for an ``ApiException`` (or any error) of ``what``."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or exc.__class__.__name__
    if status == 404:
        return KubeError("%s: not found (404 %s)" % (what, reason),
                         "Is ESO installed and does it serve %s/v1 (ESO 0.17+)? For an older ESO set api_version=v1beta1; "
                         "for a single object check its namespace and name" % GROUP)
    if status in (401, 403):
        return KubeError("%s: %s (%s)" % (what, "not authenticated" if status == 401 else "forbidden", reason),
                         "Use a kubeconfig/context whose identity may get, list and patch externalsecrets.external-secrets.io "
                         "and list secretstores/clustersecretstores")
    if status:
        return KubeError("%s: HTTP %s %s" % (what, status, reason), "Check the Kubernetes API server and retry")
    return KubeError("%s: %s" % (what, exc), "Check the API server address in the kubeconfig and the network")


def _items(resp, kind, version):
    resp = resp or {}
    out = []
    for item in resp.get("items") or []:
        item = dict(item)
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", "%s/%s" % (GROUP, version))
        out.append(item)
    return flatten(out)


def list_objects(api, kind, version, namespace=None):
    """``GET /apis/external-secrets.io/<version>/[namespaces/<ns>/]<plural>``: the objects of ``kind``."""
    plural = PLURALS[kind]
    try:
        if namespace and kind != "ClusterSecretStore":
            resp = api.list_namespaced_custom_object(GROUP, version, namespace, plural)
        else:
            resp = api.list_cluster_custom_object(GROUP, version, plural)
    except Exception as exc:  # noqa: BLE001
        raise describe_api_error(exc, "Listing %s" % plural)
    return _items(resp, kind, version)


def list_eso_objects(api, version, namespace=None):
    """ExternalSecrets (in ``namespace`` or everywhere), SecretStores likewise, and every ClusterSecretStore."""
    objects = []
    for kind in ("ClusterSecretStore", "SecretStore", "ExternalSecret"):
        objects += list_objects(api, kind, version, namespace)
    return objects


def list_external_secret_events(core, namespace):
    """``GET /api/v1/namespaces/<ns>/events?fieldSelector=involvedObject.kind=ExternalSecret``, as API dicts."""
    try:
        resp = core.list_namespaced_event(namespace, field_selector="involvedObject.kind=ExternalSecret")
    except Exception as exc:  # noqa: BLE001
        raise describe_api_error(exc, "Listing events in %s" % namespace)
    if not isinstance(resp, dict):
        # model objects -> the API's own JSON shape (camelCase keys, RFC 3339 times)
        resp = core.api_client.sanitize_for_serialization(resp)
    return [dict(item, kind="Event") for item in (resp or {}).get("items") or []]


def get_external_secret(api, version, namespace, name):
    """``GET .../namespaces/<ns>/externalsecrets/<name>``; None when it does not exist."""
    try:
        return api.get_namespaced_custom_object(GROUP, version, namespace, PLURALS["ExternalSecret"], name)
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status", None) == 404:
            return None
        raise describe_api_error(exc, "Reading ExternalSecret %s/%s" % (namespace, name))


def annotate_external_secret(api, version, namespace, name, annotations):
    """``PATCH .../externalsecrets/<name>`` (merge patch of ``metadata.annotations``)."""
    body = {"metadata": {"annotations": annotations}}
    try:
        return api.patch_namespaced_custom_object(GROUP, version, namespace, PLURALS["ExternalSecret"], name, body,
                                                  field_manager=FIELD_MANAGER,
                                                  _content_type="application/merge-patch+json")
    except Exception as exc:  # noqa: BLE001
        raise describe_api_error(exc, "Annotating ExternalSecret %s/%s" % (namespace, name))


# -- the workloads that consume the synced Secrets (apps/v1) --------------------------------------------
# Read and patched through the same CustomObjectsApi: its generic /apis/<group>/<version>/namespaces/<ns>/<plural>
# paths serve apps/v1 as well, and it returns the API's own JSON (no client-side model validation of pod specs).
APPS_GROUP, APPS_VERSION = "apps", "v1"
WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"


def describe_workload_error(exc, what):
    """Message + hint for an ``ApiException`` of a workload call (the ESO hints do not fit apps/v1)."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or exc.__class__.__name__
    if status in (401, 403):
        return KubeError("%s: %s (%s)" % (what, "not authenticated" if status == 401 else "forbidden", reason),
                         "Use a kubeconfig/context whose identity may get and patch deployments, statefulsets and "
                         "daemonsets (apps) in the apps' namespaces")
    if status:
        return KubeError("%s: HTTP %s %s" % (what, status, reason), "Check the Kubernetes API server and retry")
    return KubeError("%s: %s" % (what, exc), "Check the API server address in the kubeconfig and the network")


def get_workload(api, namespace, kind, name):
    """``GET /apis/apps/v1/namespaces/<ns>/<deployments|statefulsets|daemonsets>/<name>``; None when it does not exist."""
    try:
        return api.get_namespaced_custom_object(APPS_GROUP, APPS_VERSION, namespace, WORKLOAD_PLURALS[kind], name)
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status", None) == 404:
            return None
        raise describe_workload_error(exc, "Reading %s %s/%s" % (kind, namespace, name))


def restart_workload(api, namespace, kind, name, stamp):
    """``PATCH .../<plural>/<name>``: merge patch of ``spec.template.metadata.annotations[restartedAt]``.

    What ``kubectl rollout restart`` sends (it sets the same annotation to an RFC 3339 time): the pod template
    changes, so the controller replaces the pods by the workload's own update strategy.
    """
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}}
    try:
        return api.patch_namespaced_custom_object(APPS_GROUP, APPS_VERSION, namespace, WORKLOAD_PLURALS[kind], name,
                                                  body, field_manager=FIELD_MANAGER,
                                                  _content_type="application/merge-patch+json")
    except Exception as exc:  # noqa: BLE001
        raise describe_workload_error(exc, "Restarting %s %s/%s" % (kind, namespace, name))


# -- force-sync decisions ---------------------------------------------------------------------
def parse_target(target):
    """``namespace/name`` or ``{namespace, name}`` -> (namespace, name)."""
    if isinstance(target, dict):
        namespace, name = target.get("namespace"), target.get("name")
    else:
        namespace, _sep, name = str(target).partition("/")
    if not namespace or not name:
        raise KubeError("ExternalSecret %r must be given as namespace/name" % (target,),
                        "Name each one as <namespace>/<name>, for example payments/payments-db")
    return namespace, name


def annotation_age(value, now):
    """Seconds since a ``force-sync`` value (unix time), or None when it is not a time."""
    try:
        stamp = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return now - stamp


def plan_force_sync(obj, now, min_interval, annotation=FORCE_SYNC_ANNOTATION):
    """(change?, reason, current value) for one ExternalSecret object."""
    current = ((obj.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if current is None:
        return True, "no %s annotation yet" % annotation, None
    age = annotation_age(current, now)
    if age is None:
        return True, "%s=%r is not a unix time" % (annotation, current), current
    if 0 <= age < min_interval:
        return False, "force-synced %ds ago (min_interval %ds)" % (age, min_interval), current
    if age < 0:
        return True, "%s=%s lies in the future (clock skew?)" % (annotation, current), current
    return True, "last force-sync %ds ago" % age, current


def force_sync(api, version, targets, now, min_interval, check_mode, annotation=FORCE_SYNC_ANNOTATION):
    """Set ``annotation=<now>`` on each target unless it was set less than ``min_interval`` seconds ago.

    Every target is read first: a missing one fails the whole task before anything is written.
    Returns one entry per target: ``{namespace, name, changed, reason, before, after}``.
    """
    plans = []
    missing = []
    for target in targets:
        namespace, name = parse_target(target)
        obj = get_external_secret(api, version, namespace, name)
        if obj is None:
            missing.append("%s/%s" % (namespace, name))
            continue
        plans.append((namespace, name, obj))
    if missing:
        raise KubeError("ExternalSecret(s) not found: %s" % ", ".join(missing),
                        "Check namespace/name (kubectl get externalsecrets -A); nothing was annotated")
    results = []
    for namespace, name, obj in plans:
        change, reason, before = plan_force_sync(obj, now, min_interval, annotation)
        entry = dict(namespace=namespace, name=name, ref="%s/%s" % (namespace, name), changed=change, reason=reason,
                     before=before, after=str(int(now)) if change else before)
        if change and not check_mode:
            try:
                annotate_external_secret(api, version, namespace, name, {annotation: str(int(now))})
            except KubeError as exc:
                exc.results = results  # the ones annotated before this failure
                raise
        results.append(entry)
    return results
