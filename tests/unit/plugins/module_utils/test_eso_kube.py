"""eso_kube.py with a fake CustomObjectsApi/CoreV1Api: no Kubernetes API server can run here.

The fake records every call with its arguments, so the tests check the exact API calls (group, version,
plural, merge patch body) as well as the force-sync decisions.
"""

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube

NOW = 1795430000


class FakeApiError(Exception):
    def __init__(self, status, reason):
        super(FakeApiError, self).__init__("(%s) %s" % (status, reason))
        self.status = status
        self.reason = reason


class FakeApi:
    """The CustomObjectsApi/CoreV1Api methods the layer uses, over an in-memory store."""

    def __init__(self, objects=(), fail=None):
        self.objects = dict(((o["metadata"]["namespace"], o["metadata"]["name"]), o) for o in objects)
        self.calls = []
        self.fail = fail or {}

    def _maybe_fail(self, method):
        if method in self.fail:
            raise self.fail[method]

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", group, version, namespace, plural, name))
        self._maybe_fail("get")
        if (namespace, name) not in self.objects:
            raise FakeApiError(404, "Not Found")
        return self.objects[(namespace, name)]

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body, **kwargs):
        self.calls.append(("patch", group, version, namespace, plural, name, body, kwargs))
        self._maybe_fail("patch")
        annotations = self.objects[(namespace, name)].setdefault("metadata", {}).setdefault("annotations", {})
        annotations.update(body["metadata"]["annotations"])
        return self.objects[(namespace, name)]

    def list_cluster_custom_object(self, group, version, plural):
        self.calls.append(("list", group, version, None, plural))
        self._maybe_fail("list")
        return {"items": [dict(o) for o in self.objects.values() if plural == "externalsecrets"]}

    def list_namespaced_custom_object(self, group, version, namespace, plural):
        self.calls.append(("list", group, version, namespace, plural))
        self._maybe_fail("list")
        return {"items": [dict(o) for (ns, _n), o in self.objects.items() if ns == namespace and plural == "externalsecrets"]}

    def list_namespaced_event(self, namespace, field_selector=None):
        self.calls.append(("events", namespace, field_selector))
        self._maybe_fail("events")
        return {"items": [{"type": "Warning", "reason": "UpdateFailed", "message": "permission denied",
                           "involvedObject": {"kind": "ExternalSecret", "name": "a", "namespace": namespace}}]}


def es(namespace, name, annotation=None):
    meta = {"namespace": namespace, "name": name}
    if annotation is not None:
        meta["annotations"] = {"force-sync": annotation}
    return {"metadata": meta, "spec": {}}


# -- decisions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("annotation, change, reason", [
    (None, True, "no force-sync annotation yet"),
    (str(NOW - 60), False, "force-synced 60s ago (min_interval 300s)"),
    (str(NOW - 301), True, "last force-sync 301s ago"),
    ("true", True, "force-sync='true' is not a unix time"),
    (str(NOW + 3600), True, "lies in the future"),
], ids=["none", "young", "old", "not-a-time", "future"])
def test_plan_force_sync(annotation, change, reason):
    decided, why, before = eso_kube.plan_force_sync(es("a", "b", annotation), NOW, 300)
    assert decided is change and reason in why and before == annotation


@pytest.mark.parametrize("target, expect", [
    ("payments/payments-db", ("payments", "payments-db")),
    ({"namespace": "a", "name": "b"}, ("a", "b")),
])
def test_parse_target(target, expect):
    assert eso_kube.parse_target(target) == expect


@pytest.mark.parametrize("target", ["payments-db", "/x", "ns/", {"name": "x"}])
def test_parse_target_refuses_names_without_namespace(target):
    with pytest.raises(eso_kube.KubeError, match="namespace/name"):
        eso_kube.parse_target(target)


# -- force_sync against the fake API ------------------------------------------------------------------------
def test_force_sync_annotates_only_what_is_due_with_a_merge_patch():
    api = FakeApi([es("a", "fresh"), es("b", "young", str(NOW - 10)), es("c", "old", str(NOW - 9999))])
    results = eso_kube.force_sync(api, "v1", ["a/fresh", "b/young", "c/old"], NOW, 300, check_mode=False)
    assert [(r["ref"], r["changed"]) for r in results] == [("a/fresh", True), ("b/young", False), ("c/old", True)]
    patches = [c for c in api.calls if c[0] == "patch"]
    assert [(c[3], c[5]) for c in patches] == [("a", "fresh"), ("c", "old")]
    for call in patches:
        assert call[1:3] == ("external-secrets.io", "v1") and call[4] == "externalsecrets"
        assert call[6] == {"metadata": {"annotations": {"force-sync": str(NOW)}}}
        assert call[7] == {"field_manager": "heracles-eso", "_content_type": "application/merge-patch+json"}
    # rerun at once: everything is young now, nothing is patched
    again = eso_kube.force_sync(api, "v1", ["a/fresh", "b/young", "c/old"], NOW + 5, 300, check_mode=False)
    assert not any(r["changed"] for r in again)
    assert len([c for c in api.calls if c[0] == "patch"]) == 2


def test_force_sync_check_mode_reads_but_never_patches():
    api = FakeApi([es("a", "fresh")])
    results = eso_kube.force_sync(api, "v1", ["a/fresh"], NOW, 300, check_mode=True)
    assert results[0]["changed"] is True and results[0]["after"] == str(NOW)
    assert [c[0] for c in api.calls] == ["get"]
    assert "annotations" not in api.objects[("a", "fresh")]["metadata"]


def test_missing_external_secret_fails_before_any_patch():
    api = FakeApi([es("a", "fresh")])
    with pytest.raises(eso_kube.KubeError, match="not found: b/missing") as info:
        eso_kube.force_sync(api, "v1", ["a/fresh", "b/missing"], NOW, 0, check_mode=False)
    assert "nothing was annotated" in str(info.value)
    assert [c[0] for c in api.calls] == ["get", "get"]


def test_forbidden_patch_names_the_rbac_needed():
    api = FakeApi([es("a", "one"), es("a", "two")], fail={"patch": FakeApiError(403, "Forbidden")})
    with pytest.raises(eso_kube.KubeError) as info:
        eso_kube.force_sync(api, "v1", ["a/one", "a/two"], NOW, 0, check_mode=False)
    assert "forbidden" in str(info.value) and "patch externalsecrets.external-secrets.io" in str(info.value)
    assert info.value.results == []


# -- listing ------------------------------------------------------------------------------------------------------
def test_list_objects_namespaced_or_cluster_wide():
    api = FakeApi([es("a", "one"), es("b", "two")])
    assert [o["metadata"]["name"] for o in eso_kube.list_objects(api, "ExternalSecret", "v1", "a")] == ["one"]
    listed = eso_kube.list_objects(api, "ExternalSecret", "v1")
    assert [(o["kind"], o["apiVersion"]) for o in listed] == [("ExternalSecret", "external-secrets.io/v1")] * 2
    eso_kube.list_objects(api, "ClusterSecretStore", "v1", "a")
    assert api.calls[-1] == ("list", "external-secrets.io", "v1", None, "clustersecretstores")


@pytest.mark.parametrize("status, expect", [
    (404, "api_version=v1beta1"),
    (403, "may get, list and patch"),
    (401, "not authenticated"),
    (500, "HTTP 500"),
])
def test_list_errors_say_what_to_do(status, expect):
    api = FakeApi(fail={"list": FakeApiError(status, "x")})
    with pytest.raises(eso_kube.KubeError) as info:
        eso_kube.list_eso_objects(api, "v1")
    assert expect in str(info.value)


def test_events_come_back_as_api_dicts():
    events = eso_kube.list_external_secret_events(FakeApi(), "billing")
    assert events[0]["kind"] == "Event" and events[0]["involvedObject"]["namespace"] == "billing"


def test_no_kubeconfig_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(eso_kube.KubeError, match="Cannot load the Kubernetes configuration"):
        eso_kube.api_client(str(tmp_path / "missing-kubeconfig"))
