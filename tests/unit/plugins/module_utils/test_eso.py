"""eso.py: the diagnosis of ExternalSecrets and stores, from recorded API objects (no cluster, no Vault)."""

import copy
import os

import pytest
import yaml

from ansible_collections.heracles.secrets.plugins.module_utils import eso

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
RECORDED = os.path.join(REPO_ROOT, "tests", "data", "eso", "objects.yml")


def recorded():
    with open(RECORDED) as handle:
        return eso.flatten(list(yaml.safe_load_all(handle)))


def store(path="kv-dev", version="v2", mount="kubernetes-dev", role="external-secrets", sa=None, kind="ClusterSecretStore",
          namespace=None, ready="True", message="store validated", conditions=None, api="external-secrets.io/v1", **vault):
    k8s = dict(mountPath=mount, role=role)
    if sa is not None:
        k8s["serviceAccountRef"] = sa
    provider = dict(server="https://vault.vault.svc:8200", path=path, version=version, auth=dict(kubernetes=k8s),
                    caProvider=dict(type="ConfigMap", name="vault-ca", key="ca.crt"))
    provider.update(vault)
    obj = dict(apiVersion=api, kind=kind, metadata=dict(name="vault-dev"), spec=dict(provider=dict(vault=provider)),
               status=dict(conditions=[dict(type="Ready", status=ready, reason="Valid", message=message)]))
    if namespace:
        obj["metadata"]["namespace"] = namespace
    if conditions is not None:
        obj["spec"]["conditions"] = conditions
    return obj


def external(name="app", namespace="apps", ready="False", message="could not get secret data from provider",
             store_name="vault-dev", store_kind="ClusterSecretStore", data=None, data_from=None, target=None,
             refresh="1h", api="external-secrets.io/v1", status=True, **spec):
    obj = dict(apiVersion=api, kind="ExternalSecret", metadata=dict(name=name, namespace=namespace),
               spec=dict(refreshInterval=refresh, secretStoreRef=dict(kind=store_kind, name=store_name),
                         target=target or dict(name=name)))
    if data is None and data_from is None:
        data = [dict(secretKey="password", remoteRef=dict(key="apps/%s/db" % name, property="password"))]
    if data is not None:
        obj["spec"]["data"] = data
    if data_from is not None:
        obj["spec"]["dataFrom"] = data_from
    if refresh is None:
        del obj["spec"]["refreshInterval"]
    obj["spec"].update(spec)
    if status:
        obj["status"] = dict(conditions=[dict(type="Ready", status=ready, reason="SecretSyncedError" if ready == "False"
                                              else "SecretSynced", message=message,
                                              lastTransitionTime="2026-11-23T09:00:00Z")],
                             refreshTime="2026-11-23T09:00:00Z")
    return obj


def findings_of(objects, **kw):
    result = eso.diagnose(objects, **kw)
    return result, dict((r["ref"], sorted(f["code"] for f in r["findings"])) for r in result["external_secrets"])


# -- the recorded objects ------------------------------------------------------------------------
def test_recorded_objects_are_diagnosed():
    objects = recorded()
    result = eso.diagnose(objects, now=eso.latest_time(objects))
    assert result["summary"] == dict(total=3, ready=1, not_ready=2, unknown=0, stores=1, stores_not_ready=0, errors=4)
    assert result["failing"] == ["billing/stripe", "orders/orders-db"]
    reports = dict((r["ref"], r) for r in result["external_secrets"])
    assert reports["payments/payments-db"]["findings"] == []
    assert reports["payments/payments-db"]["vault_check"] is None
    stripe = reports["billing/stripe"]
    assert [f["code"] for f in stripe["findings"]] == ["event_vault_permission_denied", "provider_error"]
    assert "permission denied" in stripe["findings"][0]["message"] and stripe["events"][0]["count"] == 97
    assert stripe["target"] == dict(name="stripe-api", creation_policy="Owner", deletion_policy="Retain", template=True)
    assert stripe["force_sync"] == "1795350000" and stripe["refresh_seconds"] == 900
    assert [f["code"] for f in reports["orders/orders-db"]["findings"]] == ["event_vault_secret_not_found", "provider_error"]
    assert result["vault_checks"] == [dict(
        name="ClusterSecretStore/vault-dev", store="ClusterSecretStore/vault-dev", server="https://vault.vault.svc:8200",
        auth_mount="kubernetes-dev", role="external-secrets", service_account_namespace="external-secrets",
        service_account_name="external-secrets", audiences=["vault"], kv_mount="kv-dev", kv_version="v2",
        paths=[dict(path="kv-dev/data/billing/stripe", capability="read", sources=["billing/stripe data[0]", "billing/stripe data[1]"]),
               dict(path="kv-dev/data/apps/orders/database", capability="read", sources=["orders/orders-db dataFrom[0].extract"])],
        external_secrets=["billing/stripe", "orders/orders-db"])]
    lines = eso.report_lines(result)
    assert lines[0] == "ExternalSecrets: 3, Ready 1, not Ready 2, not reconciled 0; stores: 1 (0 not Ready)"
    assert "  reads kv-dev/data/apps/orders/database (read) for dataFrom[0].extract" in lines


def test_recorded_time_is_the_newest_timestamp():
    assert eso.latest_time(recorded()) == eso.parse_time("2026-11-23T09:16:42Z")


def test_filters_by_namespace_and_name():
    objects = recorded()
    assert eso.diagnose(objects, namespaces=["orders"])["failing"] == ["orders/orders-db"]
    assert eso.diagnose(objects, names=["stripe"])["failing"] == ["billing/stripe"]
    assert eso.diagnose(objects, names=["billing/stripe", "payments-db"])["summary"]["total"] == 2


# -- paths as ESO's Vault provider builds them (its buildPath documentation, case by case) ------------
@pytest.mark.parametrize("path, version, key, expect", [
    ("secret/path", "v2", "foo", "secret/path/data/foo"),
    ("secret/path", "v1", "foo", "secret/path/foo"),
    ("secret/path", "v2", "secret/path/foo", "secret/path/data/foo"),
    ("secret/path", "v2", "secret/path/data/foo", "secret/path/data/foo"),
    ("secret/path", "v1", "secret/path/foo", "secret/path/foo"),
    (None, "v2", "secret/path/foo", "secret/data/path/foo"),
    (None, "v2", "secret/path/data/foo", "secret/path/data/foo"),
    (None, "v1", "secret/path/foo", "secret/path/foo"),
    ("kv-dev", "v2", "data/apps/x", "kv-dev/data/data/apps/x"),
    ("kv-dev/data", "v2", "apps/x", "kv-dev/data/data/apps/x"),
])
def test_build_data_path(path, version, key, expect):
    assert eso.build_data_path(dict(path=path, version=version), key) == expect


@pytest.mark.parametrize("path, version, key, expect", [
    ("kv-dev", "v2", "apps/x", "kv-dev/metadata/apps/x"),
    ("kv-dev", "v2", "", "kv-dev/metadata/"),
    ("kv-dev", "v1", "apps/x", "kv-dev/apps/x"),
    (None, "v2", "kv-dev/data/apps/x", "kv-dev/metadata/apps/x"),
    (None, "v2", "kv-dev/apps/x", None),
])
def test_build_metadata_path(path, version, key, expect):
    assert eso.build_metadata_path(dict(path=path, version=version), key) == expect


@pytest.mark.parametrize("ref, expect", [
    (dict(kind="get", key="apps/a", metadata_policy="None"), [("kv-dev/data/apps/a", "read")]),
    (dict(kind="get", key="apps/a", metadata_policy="Fetch"), [("kv-dev/metadata/apps/a", "read")]),
    (dict(kind="extract", key="apps/a", metadata_policy="None"), [("kv-dev/data/apps/a", "read")]),
    (dict(kind="find", key="apps"), [("kv-dev/metadata/apps/", "list"), ("kv-dev/data/apps/", "read")]),
    (dict(kind="find", key="", find_tags={"team": "a"}),
     [("kv-dev/metadata/", "list"), ("kv-dev/data/", "read"), ("kv-dev/metadata/", "read")]),
    (dict(kind="generator", key=None), []),
], ids=["get", "metadata-fetch", "extract", "find-by-name", "find-by-tags", "generator"])
def test_vault_requests(ref, expect):
    assert eso.vault_requests(dict(path="kv-dev", version="v2"), ref) == expect


# -- findings, one mistake at a time ---------------------------------------------------------------------
SA = dict(name="external-secrets", namespace="external-secrets", audiences=["vault"])
CASES = {
    "ready-no-findings": ([store(sa=SA), external(ready="True", message="secret synced")], []),
    "v1beta1-manifest": ([store(sa=SA), external(api="external-secrets.io/v1beta1", status=False)],
                         ["api_version_removed", "not_reconciled"]),
    "store-missing": ([external(store_name="nope")], ["provider_error", "store_missing"]),
    "store-kind-wrong": ([store(sa=SA), external(store_kind="SecretStore")], ["provider_error", "store_missing"]),
    "store-not-ready": ([store(sa=SA, ready="False", message="unable to log in: permission denied"), external()],
                        ["provider_error", "store_not_ready"]),
    "namespace-denied": ([store(sa=SA, conditions=[dict(namespaces=["payments"])]), external()],
                         ["provider_error", "store_namespace_denied"]),
    "namespace-regex-ok": ([store(sa=SA, conditions=[dict(namespaceRegexes=["^ap"])]), external()], ["provider_error"]),
    "namespace-selector": ([store(sa=SA, conditions=[dict(namespaceSelector=dict(matchLabels=dict(team="a")))]), external()],
                           ["provider_error", "store_namespace_unknown"]),
    "key-with-data": ([store(sa=SA), external(data=[dict(secretKey="k", remoteRef=dict(key="data/apps/x"))])],
                      ["key_has_data_prefix", "provider_error"]),
    "no-store-path": ([store(sa=SA, path=None), external(data=[dict(secretKey="k", remoteRef=dict(key="kv-dev/apps/x"))])],
                      ["key_without_mount", "provider_error"]),
    "delete-with-merge": ([store(sa=SA), external(target=dict(creationPolicy="Merge", deletionPolicy="Delete"))],
                          ["deletion_policy_conflict", "provider_error"]),
    "merge-target-missing": ([store(sa=SA), external(message="secret will not be created due to CreationPolicy=Merge",
                                                     target=dict(creationPolicy="Merge"))], ["merge_target_missing"]),
    "refresh-disabled": ([store(sa=SA), external(ready="True", message="ok", refresh="0")], ["refresh_disabled"]),
    "refresh-10s": ([store(sa=SA), external(ready="True", message="ok", refresh="10s")], ["refresh_too_frequent"]),
    "refresh-invalid": ([store(sa=SA), external(ready="True", message="ok", refresh="hourly")], ["refresh_interval_invalid"]),
    "no-data": ([store(sa=SA), external(data=[], data_from=[])], ["no_data", "provider_error"]),
    "generic-message": ([store(sa=SA), external(message="something odd")], ["not_ready"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_findings(case):
    objects, expect = CASES[case]
    result, codes = findings_of(objects)
    assert codes["apps/app"] == expect, result["external_secrets"][0]["findings"]
    for item in result["external_secrets"][0]["findings"]:
        assert item["severity"] in ("error", "warning", "info") and item["message"]


def test_stale_refresh_is_a_warning_only_when_now_is_known():
    objects = [store(sa=SA), external(ready="True", message="ok")]
    assert findings_of(objects)[1]["apps/app"] == []
    now = eso.parse_time("2026-11-23T09:00:00Z") + 3 * 3600
    assert findings_of(objects, now=now)[1]["apps/app"] == ["stale"]


STORE_CASES = {
    "path-ends-in-data": (store(sa=SA, path="kv-dev/data"), ["kv_path_has_data"]),
    "mount-with-auth-prefix": (store(sa=SA, mount="auth/kubernetes-dev"), ["auth_mount_has_prefix"]),
    "plain-http": (store(sa=SA, server="http://vault:8200"), ["vault_server_plaintext"]),
    "no-ca": (store(sa=SA, caProvider=None), ["vault_ca_not_set"]),
    "no-role": (store(sa=SA, role=""), ["auth_role_missing"]),
    "cluster-store-sa-without-namespace": (store(sa=dict(name="eso")), ["cluster_store_sa_namespace_unset"]),
    "v1beta1": (store(sa=SA, api="external-secrets.io/v1beta1"), ["api_version_removed"]),
    "bad-version": (store(sa=SA, version="v3"), ["kv_version_invalid"]),
}


@pytest.mark.parametrize("case", sorted(STORE_CASES))
def test_store_findings(case):
    obj, expect = STORE_CASES[case]
    assert sorted(f["code"] for f in eso.store_findings(obj)) == expect


def test_mount_prefix_fix_names_the_right_mount():
    fix = eso.store_findings(store(sa=SA, mount="auth/kubernetes-dev"))[0]["fix"]
    assert "'kubernetes-dev'" in fix


# -- which service account ESO presents ------------------------------------------------------------------
@pytest.mark.parametrize("kind, namespace, sa, expect", [
    ("SecretStore", "team-a", dict(name="eso", namespace="ignored"), ("team-a", "eso")),
    ("ClusterSecretStore", None, dict(name="eso", namespace="external-secrets"), ("external-secrets", "eso")),
    ("ClusterSecretStore", None, dict(name="eso"), ("apps", "eso")),
    ("ClusterSecretStore", None, None, ("external-secrets", "external-secrets")),
], ids=["secretstore-own-namespace", "cluster-store-named-namespace", "cluster-store-es-namespace", "controller-token"])
def test_service_account_for(kind, namespace, sa, expect):
    obj = store(sa=sa, kind=kind, namespace=namespace)
    provider = eso.vault_provider(obj)
    assert eso.service_account_for(kind, obj, provider, "apps", eso.DEFAULT_CONTROLLER_SA) == expect


def test_cluster_store_without_sa_namespace_gets_one_check_per_namespace():
    objects = [store(sa=dict(name="eso", audiences=["vault"])), external(name="a", namespace="team-a"),
               external(name="b", namespace="team-b")]
    checks = eso.diagnose(objects)["vault_checks"]
    assert [(c["name"], c["service_account_namespace"]) for c in checks] == [
        ("ClusterSecretStore/vault-dev as team-a/eso", "team-a"), ("ClusterSecretStore/vault-dev as team-b/eso", "team-b")]


def test_secret_store_in_another_namespace_is_named():
    obj = store(sa=SA, kind="SecretStore", namespace="team-x")
    result, codes = findings_of([obj, external(store_kind="SecretStore")])
    fix = [f for f in result["external_secrets"][0]["findings"] if f["code"] == "store_missing"][0]["fix"]
    assert "exists in namespace team-x only" in fix


def test_non_vault_store_has_no_vault_check():
    aws = dict(apiVersion="external-secrets.io/v1", kind="ClusterSecretStore", metadata=dict(name="vault-dev"),
               spec=dict(provider=dict(aws=dict(service="SecretsManager", region="ap-northeast-1"))),
               status=dict(conditions=[dict(type="Ready", status="True")]))
    result = eso.diagnose([aws, external()])
    assert result["vault_checks"] == [] and result["external_secrets"][0]["store"]["provider"] == "aws"


# -- messages, times, lists --------------------------------------------------------------------------------
@pytest.mark.parametrize("message, code", [
    ("Code: 403. Errors: * permission denied", "vault_permission_denied"),
    ("err: Secret does not exist", "vault_secret_not_found"),
    ('cannot find secret data for key: "password"', "property_not_found"),
    ('invalid role name "eso"', "vault_role_not_found"),
    ("service account name not authorized", "vault_sa_not_bound"),
    ("invalid audience (aud) claim", "vault_audience_mismatch"),
    ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "vault_tls"),
    ("Vault is sealed", "vault_sealed"),
    ("dial tcp 10.0.0.1:8200: connect: connection refused", "vault_unreachable"),
    ("could not get secret data from provider", "provider_error"),
    ("nothing we know", None),
])
def test_explain_message(message, code):
    assert eso.explain_message(message, None)[0] == code


@pytest.mark.parametrize("text, epoch", [
    ("1970-01-01T00:00:00Z", 0),
    ("2026-11-23T09:16:42Z", 1795425402),
    ("2026-11-23T10:16:42+01:00", 1795425402),
    ("2026-11-23T09:16:42.123456Z", 1795425402),
    ("yesterday", None),
    (None, None),
])
def test_parse_time(text, epoch):
    assert eso.parse_time(text) == epoch


def test_flatten_typed_list_fills_kind_and_api_version():
    typed = dict(apiVersion="external-secrets.io/v1", kind="ExternalSecretList",
                 items=[dict(metadata=dict(name="a", namespace="n"))])
    flat = eso.flatten([typed, dict(kind="List", items=[copy.deepcopy(typed)]), "not an object"])
    assert [(o["kind"], o["apiVersion"]) for o in flat] == [("ExternalSecret", "external-secrets.io/v1")] * 2


def test_objects_of_other_groups_are_ignored():
    other = dict(apiVersion="v1", kind="SecretStore", metadata=dict(name="vault-dev"))
    assert eso.diagnose([other, external()])["external_secrets"][0]["store"]["found"] is False
