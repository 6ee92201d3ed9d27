"""rollout.py: the decisions (pure), and the rollout over a fake API with a fake clock.

The fake API keeps objects by (plural, namespace, name) and records every call, so the tests check the exact
calls (apps/v1 for workloads, merge patches, their bodies) and their order: every stale ExternalSecret is
annotated, all are refreshed, and only then are workloads restarted. The clock only moves when the code sleeps;
an "ESO" callback reconciles annotated ExternalSecrets after a set delay, as the controller would.
"""

import copy

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube, rollout

T0 = 1796612640  # 2026-12-07T03:04:00Z
CHANGE = T0 + 60


def stamp(epoch):
    return rollout.rfc3339(epoch)


def external_secret(namespace, name, refresh=None, ready=True, annotation=None):
    obj = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
           "metadata": {"namespace": namespace, "name": name}, "spec": {}, "status": {}}
    if refresh is not None:
        obj["status"]["refreshTime"] = stamp(refresh)
    if ready is not None:
        obj["status"]["conditions"] = [{"type": "Ready", "status": str(ready), "message": "m"}]
    if annotation is not None:
        obj["metadata"]["annotations"] = {"force-sync": annotation}
    return obj


def workload(namespace, kind, name, created=T0, restarted=None):
    obj = {"apiVersion": "apps/v1", "kind": kind,
           "metadata": {"namespace": namespace, "name": name, "creationTimestamp": stamp(created)},
           "spec": {"template": {"metadata": {}}}}
    if restarted is not None:
        obj["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": restarted}
    return obj


class FakeApiError(Exception):
    def __init__(self, status, reason):
        super(FakeApiError, self).__init__("(%s) %s" % (status, reason))
        self.status = status
        self.reason = reason


class Clock:
    def __init__(self, now):
        self.now = float(now)
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


class FakeApi:
    """CustomObjectsApi over {(plural, namespace, name): object}; ESO refreshes annotated ones ``eso_delay`` later."""

    PLURALS = {"ExternalSecret": "externalsecrets", "Deployment": "deployments", "StatefulSet": "statefulsets",
               "DaemonSet": "daemonsets"}

    def __init__(self, objects, clock, eso_delay=1.0, stuck=(), fail=None):
        self.objects = dict(((self.PLURALS[o["kind"]], o["metadata"]["namespace"], o["metadata"]["name"]), o)
                            for o in copy.deepcopy(objects))
        self.clock = clock
        self.eso_delay = eso_delay
        self.stuck = set(stuck)
        self.fail = fail or {}
        self.calls = []
        self.due = {}  # key -> time ESO reconciles it

    def _eso(self):
        for key, when in list(self.due.items()):
            if self.clock() >= when and "%s/%s" % key[1:] not in self.stuck:
                self.objects[key]["status"] = {"refreshTime": stamp(int(when)),
                                               "conditions": [{"type": "Ready", "status": "True"}]}
                del self.due[key]

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", group, version, namespace, plural, name))
        if "get" in self.fail:
            raise self.fail["get"]
        self._eso()
        if (plural, namespace, name) not in self.objects:
            raise FakeApiError(404, "Not Found")
        return copy.deepcopy(self.objects[(plural, namespace, name)])

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body, **kwargs):
        self.calls.append(("patch", group, version, namespace, plural, name, body, kwargs))
        if "patch" in self.fail:
            raise self.fail["patch"]
        obj = self.objects[(plural, namespace, name)]
        if plural == "externalsecrets":
            obj["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
            self.due[(plural, namespace, name)] = self.clock() + self.eso_delay
        else:
            template = obj["spec"]["template"]["metadata"]
            template.setdefault("annotations", {}).update(body["spec"]["template"]["metadata"]["annotations"])
        return obj

    def patches(self):
        return [c for c in self.calls if c[0] == "patch"]


# -- decisions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (T0, T0),
    (T0 + 0.2, T0 + 1),
    (str(T0), T0),
    ("2026-12-07T03:04:00Z", T0),
    ("2026-12-07T03:04:00.000000000Z", T0),
    ("2026-12-07T03:04:00.000000001Z", T0 + 1),
    ("2026-12-07T12:04:00+09:00", T0),
    ("soon", None),
    ("", None),
    (None, None),
    (True, None),
], ids=["int", "float-rounds-up", "digits", "rfc3339", "zero-fraction", "fraction-rounds-up", "offset", "word",
        "empty", "none", "bool"])
def test_changed_epoch(value, expected):
    assert rollout.changed_epoch(value) == expected


@pytest.mark.parametrize("refresh, sync, reason", [
    (None, True, "ESO has not recorded a refresh yet"),
    (CHANGE - 1, True, "refreshed 2026-12-07T03:04:59Z, before the change at 2026-12-07T03:05:00Z"),
    (CHANGE, False, "at or after the change"),
    (CHANGE + 5, False, "at or after the change"),
], ids=["never", "before", "same-second", "after"])
def test_plan_sync(refresh, sync, reason):
    decided, why = rollout.plan_sync(external_secret("a", "b", refresh), CHANGE)
    assert decided is sync and reason in why


@pytest.mark.parametrize("refresh, ready, seen_before, done", [
    (CHANGE, True, CHANGE - 100, True),
    (CHANGE + 3, True, CHANGE - 100, True),
    (CHANGE - 100, True, CHANGE - 100, False),   # still the refresh from before the annotation
    (CHANGE - 50, True, CHANGE - 100, True),     # a newer refresh, stamped by a lagging ESO clock
    (CHANGE + 3, False, CHANGE - 100, False),    # refreshed, but not Ready
    (CHANGE + 3, None, CHANGE - 100, False),
    (None, True, None, False),
    (CHANGE - 50, True, None, True),             # first refresh ever
], ids=["same-second", "after", "unchanged", "lagging-eso-clock", "not-ready", "no-condition", "never", "first"])
def test_is_refreshed(refresh, ready, seen_before, done):
    assert rollout.is_refreshed(external_secret("a", "b", refresh, ready), CHANGE, seen_before) is done


@pytest.mark.parametrize("created, restarted, restart, reason", [
    (T0, None, True, "(re)started 2026-12-07T03:04:00Z, before the change"),
    (CHANGE, None, False, "(re)started 2026-12-07T03:05:00Z, at or after the change"),
    (T0, stamp(CHANGE + 1), False, "(re)started 2026-12-07T03:05:01Z, at or after"),
    (T0, "2026-12-07T12:04:59+09:00", True, "(re)started 2026-12-07T03:04:59Z, before"),  # kubectl writes local time
    (T0, "yesterday", True, "(re)started 2026-12-07T03:04:00Z, before"),
], ids=["created-before", "created-after", "restarted-after", "kubectl-offset", "unparseable-annotation"])
def test_plan_restart(created, restarted, restart, reason):
    decided, why, _last = rollout.plan_restart(workload("a", "Deployment", "w", created, restarted), CHANGE)
    assert decided is restart and reason in why


def test_plan_restart_without_any_time():
    obj = workload("a", "Deployment", "w")
    del obj["metadata"]["creationTimestamp"]
    assert rollout.plan_restart(obj, CHANGE)[:2] == (True, "no restartedAt annotation and no creationTimestamp")


@pytest.mark.parametrize("workloads, expect", [
    ([{"namespace": "a", "kind": "CronJob", "name": "w"}], "kind 'CronJob' is not one of DaemonSet, Deployment, StatefulSet"),
    ([{"namespace": "a", "name": "w"}], "needs namespace, kind and name"),
    (["a/Deployment/w"], "needs namespace, kind and name"),
    ([{"namespace": "a", "kind": "Deployment", "name": "w", "secrets": ["other"]}],
     "workload a/Deployment/w consumes none of the ExternalSecrets given"),
    ([{"namespace": "z", "kind": "Deployment", "name": "w"}], "workload z/Deployment/w consumes none"),
], ids=["kind", "no-kind", "string", "other-secret", "other-namespace"])
def test_workload_plans_refuse_bad_entries(workloads, expect):
    with pytest.raises(eso_kube.KubeError) as err:
        rollout.workload_plans(workloads, ["a/s"])
    assert expect in str(err.value)


def test_workload_plans_tie_workloads_to_their_external_secrets():
    plans = rollout.workload_plans([
        {"namespace": "a", "kind": "Deployment", "name": "w", "secrets": ["s", "t", "elsewhere"]},
        {"namespace": "a", "kind": "StatefulSet", "name": "x"},
        {"namespace": "a", "kind": "Deployment", "name": "w", "secrets": ["s"]},
    ], ["a/s", "a/t", "b/s"])
    assert [(p["ref"], p["external_secrets"]) for p in plans] == [
        ("a/Deployment/w", ["a/s", "a/t"]), ("a/StatefulSet/x", ["a/s", "a/t"])]


def test_changed_times_one_for_all_or_per_ref():
    assert rollout.changed_times("2026-12-07T03:05:00Z", ["a/s", "b/t"]) == {"a/s": CHANGE, "b/t": CHANGE}
    assert rollout.changed_times({"a/s": CHANGE, "b/t": str(T0)}, ["a/s", "b/t"]) == {"a/s": CHANGE, "b/t": T0}
    with pytest.raises(eso_kube.KubeError, match="changed_at has no time for ExternalSecret b/t"):
        rollout.changed_times({"a/s": CHANGE}, ["a/s", "b/t"])
    with pytest.raises(eso_kube.KubeError, match="changed_at 'later' is not a time. Give unix seconds"):
        rollout.changed_times("later", ["a/s"])


# -- the rollout -------------------------------------------------------------------------------------
WORLD = [
    external_secret("pay", "db", refresh=T0),            # stale
    external_secret("pay", "stripe", refresh=CHANGE + 1),  # up to date
    external_secret("ord", "db", refresh=None, ready=None),  # never reconciled
    workload("pay", "Deployment", "api"),
    workload("pay", "Deployment", "hooks", restarted=stamp(CHANGE + 2)),
    workload("ord", "StatefulSet", "worker"),
    workload("ord", "DaemonSet", "agent", created=CHANGE + 3),
]
TARGETS = ["pay/db", "pay/stripe", "ord/db"]
WORKLOADS = [
    {"namespace": "pay", "kind": "Deployment", "name": "api", "secrets": ["db", "stripe"]},
    {"namespace": "pay", "kind": "Deployment", "name": "hooks", "secrets": ["stripe"]},
    {"namespace": "ord", "kind": "StatefulSet", "name": "worker", "secrets": ["db"]},
    {"namespace": "ord", "kind": "DaemonSet", "name": "agent", "secrets": ["db"]},
]
CHANGED = {"pay/db": CHANGE, "pay/stripe": T0, "ord/db": CHANGE}


def run(api, clock, check_mode=False, timeout=30, changed=None):
    return rollout.rollout(api, "v1", TARGETS, changed or CHANGED, WORKLOADS, check_mode, timeout, 2,
                           clock=clock, sleep=clock.sleep)


def test_rollout_syncs_waits_then_restarts_and_a_rerun_does_nothing():
    clock = Clock(CHANGE - 0.5)  # the change lies half a second ahead: the annotation waits for it
    api = FakeApi(WORLD, clock, eso_delay=3)
    result = run(api, clock)
    assert clock.slept[0] == 0.5
    patches = [(c[4], c[3], c[5], c[6], c[7]) for c in api.patches()]
    merge = {"field_manager": "heracles-eso", "_content_type": "application/merge-patch+json"}
    assert patches == [
        ("externalsecrets", "pay", "db", {"metadata": {"annotations": {"force-sync": str(CHANGE)}}}, merge),
        ("externalsecrets", "ord", "db", {"metadata": {"annotations": {"force-sync": str(CHANGE)}}}, merge),
        ("deployments", "pay", "api", {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp(CHANGE + 4)}}}}}, merge),
        ("statefulsets", "ord", "worker", {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp(CHANGE + 4)}}}}}, merge),
    ]
    assert all(c[1:3] == ("apps", "v1") for c in api.patches()[2:])
    assert result["synced"] == ["pay/db", "ord/db"] and result["restarted"] == ["pay/Deployment/api", "ord/StatefulSet/worker"]
    assert result["left_alone"] == ["pay/stripe", "pay/Deployment/hooks", "ord/DaemonSet/agent"]
    assert [e["waited"] for e in result["external_secrets"] if e["action"] == "synced"] == [4.0, 4.0]
    assert "ExternalSecret pay/db: ESO refreshed it at 2026-12-07T03:05:03Z, Ready (waited 4.0 s)" in result["steps"]
    assert "StatefulSet ord/worker: restarted (restartedAt=2026-12-07T03:05:04Z; (re)started 2026-12-07T03:04:00Z, " \
           "before the change at 2026-12-07T03:05:00Z)" in result["steps"]

    clock.now += 600
    count = len(api.patches())
    again = run(api, clock)
    assert len(api.patches()) == count and again["synced"] == [] and again["restarted"] == []
    assert sorted(again["left_alone"]) == sorted(TARGETS + [
        "pay/Deployment/api", "pay/Deployment/hooks", "ord/StatefulSet/worker", "ord/DaemonSet/agent"])


def test_check_mode_reads_and_reports_but_patches_nothing_and_does_not_wait():
    clock = Clock(CHANGE + 10)
    api = FakeApi(WORLD, clock)
    result = run(api, clock, check_mode=True)
    assert api.patches() == [] and clock.slept == []
    assert result["synced"] == ["pay/db", "ord/db"] and result["restarted"] == ["pay/Deployment/api", "ord/StatefulSet/worker"]
    assert [e["action"] for e in result["external_secrets"]] == ["would sync", "up to date", "would sync"]
    assert "ExternalSecret pay/db: would force-sync and wait for ESO (refreshed 2026-12-07T03:04:00Z, before the " \
           "change at 2026-12-07T03:05:00Z)" in result["steps"]


def test_eso_that_never_refreshes_times_out_naming_it_and_nothing_is_restarted():
    clock = Clock(CHANGE + 10)
    api = FakeApi(WORLD, clock, stuck={"ord/db"})
    with pytest.raises(rollout.RolloutError) as err:
        run(api, clock, timeout=10)
    message = str(err.value)
    assert message.startswith("ESO did not refresh ExternalSecret ord/db (refreshTime never, change at "
                              "2026-12-07T03:05:00Z, no Ready condition) within 10s of the force-sync; no workload was "
                              "restarted. Check that the ESO controller runs")
    assert "kubectl -n ord describe externalsecret db (its SecretStore Ready" in message
    assert [c[4] for c in api.patches()] == ["externalsecrets", "externalsecrets"]
    assert err.value.results["synced"] == ["pay/db", "ord/db"] and err.value.results["restarted"] == []
    assert 10 <= clock.now - (CHANGE + 10) <= 12


def test_a_missing_object_fails_before_any_patch():
    clock = Clock(CHANGE + 10)
    api = FakeApi(WORLD[:-1], clock)
    with pytest.raises(eso_kube.KubeError) as err:
        rollout.rollout(api, "v1", TARGETS + ["x/gone"], CHANGE, WORKLOADS, False, 5, 1, clock=clock, sleep=clock.sleep)
    assert str(err.value).startswith("Not found: ExternalSecret x/gone, DaemonSet ord/agent. Check the names")
    assert "nothing was changed" in str(err.value) and api.patches() == []


def test_an_annotation_that_already_holds_this_second_is_bumped():
    clock = Clock(CHANGE + 10)
    api = FakeApi([external_secret("pay", "db", refresh=T0, annotation=str(CHANGE + 10))], clock)
    rollout.rollout(api, "v1", ["pay/db"], CHANGE, [], False, 30, 1, clock=clock, sleep=clock.sleep)
    assert api.patches()[0][6] == {"metadata": {"annotations": {"force-sync": str(CHANGE + 11)}}}


def test_a_forbidden_restart_is_reported_with_what_was_done():
    clock = Clock(CHANGE + 10)
    api = FakeApi([external_secret("pay", "db", refresh=CHANGE), workload("pay", "Deployment", "api")], clock,
                  fail={"patch": FakeApiError(403, "Forbidden")})
    with pytest.raises(rollout.RolloutError) as err:
        rollout.rollout(api, "v1", ["pay/db"], CHANGE, [{"namespace": "pay", "kind": "Deployment", "name": "api"}],
                        False, 30, 1, clock=clock, sleep=clock.sleep)
    assert str(err.value) == ("Restarting Deployment pay/api: forbidden (Forbidden). Use a kubeconfig/context whose "
                              "identity may get and patch deployments, statefulsets and daemonsets (apps) in the apps' "
                              "namespaces")
    assert err.value.results["restarted"] == [] and err.value.results["synced"] == []


def test_workload_calls_go_to_apps_v1():
    clock = Clock(T0)
    api = FakeApi([workload("ord", "DaemonSet", "agent")], clock)
    assert eso_kube.get_workload(api, "ord", "DaemonSet", "agent")["kind"] == "DaemonSet"
    assert eso_kube.get_workload(api, "ord", "DaemonSet", "gone") is None
    assert api.calls[0] == ("get", "apps", "v1", "ord", "daemonsets", "agent")
    api.fail["get"] = FakeApiError(500, "Internal Server Error")
    with pytest.raises(eso_kube.KubeError, match="Reading DaemonSet ord/agent: HTTP 500 Internal Server Error. Check"):
        eso_kube.get_workload(api, "ord", "DaemonSet", "agent")
