"""vault_eso_check and playbooks/eso-sync.yml against the real session cluster and a real TokenReview endpoint.

Kubernetes cannot run here, so the ESO side comes from recorded API objects (tests/data/eso/objects.yml:
one ExternalSecret Ready, one failing on a path the ESO policy does not grant, one failing on a secret that
does not exist); the Vault side is real: a KV v2 mount, the policy such a shared ClusterSecretStore's role
carries (LEGACY_ESO_POLICY: the platform itself no longer has one, its SecretStores log in as the apps, but
vault_eso_check diagnoses stores of either kind) and a Kubernetes auth role, all under names of their own so
other tests sharing the cluster are not disturbed.
"""

import os
import secrets
import time

import hvac.exceptions
import pytest
import yaml

from heracles_playbook import Runner, connection_vars, recap
from kubeapi import KubeApi
from heracles_testlib import ROOT, find_leaks, run_module
from ansible_collections.heracles.secrets.plugins.module_utils import eso, vault_data

pytestmark = pytest.mark.slow
SFX = secrets.token_hex(3)
KV = "kv-eso-%s" % SFX
AUTH = "k8s-eso-%s" % SFX
POLICY = "eso-%s" % SFX
# What a cluster-wide store's role reads (the recorded objects come from such a cluster).
LEGACY_ESO_POLICY = """path "${kv}/data/apps/*" {
  capabilities = ["read"]
}

path "${kv}/metadata/apps/*" {
  capabilities = ["read", "list"]
}
"""
RECORDED = os.path.join(ROOT, "tests", "data", "eso", "objects.yml")
STATE = {}


def recorded_text():
    with open(RECORDED) as handle:
        return handle.read().replace("kubernetes-dev", AUTH).replace("kv-dev", KV)


def vault_checks():
    result = eso.diagnose(list(yaml.safe_load_all(recorded_text())))
    assert result["failing"] == ["billing/stripe", "orders/orders-db"]
    return result["vault_checks"]


@pytest.fixture(scope="module", autouse=True)
def vault_side(cluster, tokenreview):
    """KV v2 + the declared ESO policy + a Kubernetes auth role for ESO, configured with the collection's modules."""
    res = run_module("vault_mount", cluster.conn(path=KV, type="kv", options={"version": "2"}))
    assert not res.failed, res
    policy = vault_data.render(LEGACY_ESO_POLICY, dict(env="test", kv=KV), "eso policy")
    res = run_module("vault_policy", cluster.conn(name=POLICY, policy=policy))
    assert not res.failed, res
    STATE["reviewer_jwt"] = tokenreview.mint("kube-system", "vault-reviewer")
    res = run_module("vault_auth_kubernetes", cluster.conn(
        mount=AUTH, kubernetes_host=tokenreview.url, kubernetes_ca_cert=tokenreview.ca_pem,
        token_reviewer_jwt=STATE["reviewer_jwt"], disable_local_ca_jwt=True,
        roles=[dict(name="external-secrets", bound_service_account_names=["external-secrets"],
                    bound_service_account_namespaces=["external-secrets"], audience="vault", policies=[POLICY],
                    token_ttl="10m")]))
    assert not res.failed, res
    root = cluster.hvac()
    STATE["values"] = [secrets.token_urlsafe(24) for dummy in range(3)]
    writes = [("apps/payments/db", {"username": "payments", "password": STATE["values"][0]}),
              ("billing/stripe", {"api_key": STATE["values"][1], "webhook_secret": STATE["values"][2]})]
    deadline = time.time() + 30
    for path, data in writes:
        while True:
            try:
                root.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=KV)
                break
            except hvac.exceptions.InvalidRequest:  # the new mount is still upgrading
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
    yield
    root = cluster.hvac()
    root.sys.disable_auth_method(AUTH)
    root.sys.disable_secrets_engine(KV)
    root.sys.delete_policy(POLICY)


def by_path(result):
    return dict((p["path"], p) for p in result["paths"])


def codes(result):
    return sorted(f["code"] for f in result["findings"])


def probe_tokens_left(cluster):
    root = cluster.hvac()
    left = []
    for accessor in root.list("auth/token/accessors")["data"]["keys"]:
        try:
            info = root.auth.token.lookup_accessor(accessor)["data"]
        except hvac.exceptions.VaultError:
            continue
        if "heracles-eso-check" in (info.get("display_name") or ""):
            left.append(accessor)
    return left


# -- the module ------------------------------------------------------------------------------------
def test_denied_and_missing_paths_are_found_the_same_in_check_mode(cluster):
    checks = vault_checks()
    checks[0]["paths"].append(dict(path="%s/data/apps/payments/db" % KV, capability="read", sources=["extra"]))
    for check_mode in (True, False):
        res = run_module("vault_eso_check", cluster.conn(checks=checks), check=check_mode)
        assert not res.failed, res
        assert res["changed"] is False and res["ok"] is False
        result = res["checks"][0]
        assert result["auth_mount_found"] and result["role_found"] and result["kv_mount_found"]
        assert result["role_settings"]["token_policies"] == [POLICY]
        paths = by_path(result)
        assert paths["%s/data/billing/stripe" % KV]["allowed"] is False
        assert paths["%s/data/billing/stripe" % KV]["exists"] is True
        assert paths["%s/data/apps/orders/database" % KV]["allowed"] is True
        assert paths["%s/data/apps/orders/database" % KV]["exists"] is False
        assert paths["%s/data/apps/payments/db" % KV] == dict(
            path="%s/data/apps/payments/db" % KV, capability="read", sources=["extra"], capabilities=["read"],
            allowed=True, exists=True, deleted=False)
        assert result["denied"] == ["%s/data/billing/stripe" % KV]
        assert result["missing"] == ["%s/data/apps/orders/database" % KV]
        assert codes(result) == ["path_denied", "secret_missing"]
        denied = [f for f in result["findings"] if f["code"] == "path_denied"][0]
        assert 'Add to policy %s: path "%s/data/billing/stripe" { capabilities = ["read"] }' % (POLICY, KV) in denied["fix"]
        assert "billing/stripe data[0]" in denied["message"]
        assert any("DENIED" in line for line in res["report"])
    assert probe_tokens_left(cluster) == []
    assert find_leaks(STATE["values"], [("stdout", res.stdout)]) == []


def test_a_real_login_proves_auth_and_reads_capabilities_of_the_real_token(cluster, tokenreview):
    jwt = tokenreview.mint("external-secrets", "external-secrets", audiences=["vault"])
    checks = vault_checks()
    checks[0]["login_jwt"] = jwt
    seen = len(tokenreview.reviews_of("system:serviceaccount:external-secrets:external-secrets"))
    res = run_module("vault_eso_check", cluster.conn(checks=checks))
    assert not res.failed, res
    login = res["checks"][0]["login"]
    assert login["attempted"] and login["ok"] and login["policies"] == sorted(["default", POLICY])
    assert login["service_account"] == "external-secrets"
    assert len(tokenreview.reviews_of("system:serviceaccount:external-secrets:external-secrets")) == seen + 1
    paths = by_path(res["checks"][0])
    assert paths["%s/data/billing/stripe" % KV]["login_capabilities"] == ["deny"]
    assert paths["%s/data/apps/orders/database" % KV]["login_capabilities"] == ["read"]
    assert jwt not in res.stdout and jwt not in res.stderr


MISTAKES = {
    "sa-name": (dict(service_account_name="default"), ["sa_name_not_bound"]),
    "sa-namespace": (dict(service_account_namespace="billing"), ["sa_namespace_not_bound"]),
    "audience": (dict(audiences=["https://kubernetes.default.svc.cluster.local"]), ["audience_mismatch"]),
    "no-audience": (dict(audiences=[]), ["audience_not_requested"]),
    "role": (dict(role="eso"), ["role_missing"]),
    "mount-with-auth-prefix": (dict(auth_mount="auth/" + AUTH), ["auth_mount_missing"]),
    "kv-mount": (dict(kv_mount="kv-nowhere-" + SFX), ["kv_mount_missing"]),
    "kv-version": (dict(kv_version="v1"), ["kv_version_mismatch"]),
}


def test_store_mistakes_are_named_with_the_fix(cluster):
    """One task, one check per mistake (the module takes many checks in one run)."""
    base = vault_checks()[0]
    checks = [dict(base, paths=[], name=name, **MISTAKES[name][0]) for name in sorted(MISTAKES)]
    res = run_module("vault_eso_check", cluster.conn(checks=checks))
    assert not res.failed, res
    results = dict((r["name"], r) for r in res["checks"])
    for name, (dummy, expect) in MISTAKES.items():
        assert codes(results[name]) == expect, (name, results[name]["findings"])
        assert all(f["fix"] for f in results[name]["findings"]), name
    assert "set mountPath to %r (without auth/)" % AUTH in results["mount-with-auth-prefix"]["findings"][0]["fix"]
    assert "external-secrets" in results["role"]["findings"][0]["message"]  # the roles that do exist


def test_login_as_an_unbound_account_fails_with_vaults_reason(cluster, tokenreview):
    jwt = tokenreview.mint("billing", "default", audiences=["vault"])
    check = dict(vault_checks()[0], service_account_namespace="billing", service_account_name="default", login_jwt=jwt)
    res = run_module("vault_eso_check", cluster.conn(checks=[check]))
    assert not res.failed, res
    result = res["checks"][0]
    assert result["login"]["ok"] is False
    assert "login_failed" in codes(result) and "sa_name_not_bound" in codes(result)
    failed = [f for f in result["findings"] if f["code"] == "login_failed"][0]
    assert "not authorized" in failed["message"] or "permission denied" in failed["message"], failed
    assert jwt not in res.stdout


def test_fail_on_findings_fails_the_task(cluster):
    res = run_module("vault_eso_check", cluster.conn(checks=vault_checks(), fail_on_findings=True))
    assert res.failed and "Vault checks found errors for ClusterSecretStore/vault-dev" in res["msg"]
    assert res["checks"][0]["denied"]


# -- the playbook -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner(cluster, tokenreview, tmp_path_factory):
    state = tmp_path_factory.mktemp("eso-sync")
    objects = state / "eso-objects.yml"
    objects.write_text(recorded_text())
    jwt_file = state / "eso.jwt"
    STATE["eso_jwt"] = tokenreview.mint("external-secrets", "external-secrets", audiences=["vault"])
    jwt_file.write_text(STATE["eso_jwt"])
    os.chmod(str(jwt_file), 0o600)
    STATE["objects"] = str(objects)
    return Runner(state, dict(heracles_vault_connection=connection_vars(cluster), eso_objects_file=str(objects),
                              eso_login_jwt_files={"ClusterSecretStore/vault-dev": str(jwt_file)}))


def test_playbook_check_then_real_reports_and_changes_nothing(runner, cluster):
    """Without force-sync the runbook only reads: check mode and the real run print the same report. The real
    run also sets eso_fail_on_errors, so it ends failed -- after the report. (The three-way run with a change is
    test_playbook_force_syncs_through_the_api_three_ways.)"""
    for args in (("--check", "--diff"), ("-v", "-e", "eso_fail_on_errors=true")):
        proc = runner.run("eso-sync.yml", *args)
        out = proc.stdout
        assert recap(proc)["changed"] == 0, out[-4000:]
        assert proc.returncode == (0 if "--check" in args else 2), out[-4000:]
        assert "ExternalSecrets: 3, Ready 1, not Ready 2" in out
        assert "billing/stripe: NOT READY" in out and "orders/orders-db: NOT READY" in out
        assert "read %s/data/billing/stripe: DENIED" % KV in out
        assert "read %s/data/apps/orders/database: allowed, NOT FOUND" % KV in out
        assert 'Add to policy %s: path \\"%s/data/billing/stripe\\"' % (POLICY, KV) in out
        assert "login with the given JWT: ok" in out
        assert "not Ready: 2 (billing/stripe, orders/orders-db)" in out
    assert proc.returncode != 0 and recap(proc)["failed"] == 1
    assert "Not Ready: billing/stripe, orders/orders-db; see the report above" in out
    assert probe_tokens_left(cluster) == []


def test_playbook_refuses_force_sync_from_recorded_objects(runner):
    proc = runner.run("eso-sync.yml", "-e", "eso_force_sync=true")
    assert proc.returncode != 0
    assert "eso_force_sync=true needs the live Kubernetes API" in proc.stdout
    assert "Read ExternalSecrets" not in proc.stdout  # stopped before anything else


def test_a_missing_or_empty_objects_file_is_named(tmp_path):
    res = run_module("eso_status_info", dict(objects_file="/nonexistent/eso.yml"))
    assert res.failed and "Cannot read objects_file /nonexistent/eso.yml" in res["msg"]
    empty = tmp_path / "empty.yml"
    empty.write_text("# nothing recorded\n")
    res = run_module("eso_status_info", dict(objects_file=str(empty)))
    assert res.failed and "holds no Kubernetes objects" in res["msg"]


# -- through the Kubernetes API (tests/lib/kubeapi.py: the API the official client talks to) -----------------
@pytest.fixture()
def kube(tmp_path):
    """A fresh API server holding the recorded objects (payments-db refreshed just now), and its kubeconfig."""
    objects = eso.flatten(list(yaml.safe_load_all(recorded_text())))
    for obj in objects:
        if obj.get("kind") == "ExternalSecret" and obj["metadata"]["name"] == "payments-db":
            obj["status"]["refreshTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    server = KubeApi(objects).start()
    server.config = server.kubeconfig(str(tmp_path / "kubeconfig"))
    try:
        yield server
    finally:
        server.stop()


def test_status_info_reads_the_api_and_the_events(kube):
    res = run_module("eso_status_info", dict(kubeconfig=kube.config))
    assert not res.failed, res
    assert res["source"] == "kubernetes" and res["failing"] == ["billing/stripe", "orders/orders-db"]
    assert res["vault_checks"] == vault_checks()
    reports = dict((r["ref"], r) for r in res["external_secrets"])
    assert reports["payments/payments-db"]["findings"] == []
    assert reports["billing/stripe"]["findings"][0]["code"] == "event_vault_permission_denied"
    gets = sorted(r["path"] for r in kube.requests if r["method"] == "GET")
    assert gets == ["/api/v1/namespaces/billing/events", "/api/v1/namespaces/orders/events",
                    "/apis/external-secrets.io/v1/clustersecretstores", "/apis/external-secrets.io/v1/externalsecrets",
                    "/apis/external-secrets.io/v1/secretstores"]
    res = run_module("eso_status_info", dict(kubeconfig=kube.config, namespace="orders"))
    assert res["failing"] == ["orders/orders-db"]
    assert "/apis/external-secrets.io/v1/namespaces/orders/externalsecrets" in [r["path"] for r in kube.requests]


@pytest.mark.parametrize("args, expect", [
    (dict(api_version="v1beta1"), "For an older ESO set api_version=v1beta1"),
    (dict(token="wrong"), "not authenticated"),
    (dict(kubeconfig="/nonexistent/kubeconfig"), "Cannot load the Kubernetes configuration"),
], ids=["v1beta1-not-served", "bad-token", "no-kubeconfig"])
def test_status_info_api_errors_say_what_to_do(kube, tmp_path, args, expect):
    args = dict(args)
    if "token" in args:
        args["kubeconfig"] = kube.kubeconfig(str(tmp_path / "bad"), token=args.pop("token"))
    args.setdefault("kubeconfig", kube.config)
    res = run_module("eso_status_info", args)
    assert res.failed and expect in res["msg"], res


def test_force_sync_three_ways_with_a_merge_patch(kube):
    args = dict(kubeconfig=kube.config, external_secrets=["billing/stripe", "orders/orders-db"])
    res = run_module("eso_force_sync", args, check=True, diff=True)
    assert not res.failed and res["changed"] is True, res
    assert res["synced"] == ["billing/stripe", "orders/orders-db"] and kube.patches() == []
    assert res["diff"]["before"]["billing/stripe"] == "1795350000"
    res = run_module("eso_force_sync", args)
    assert not res.failed and res["changed"] is True, res
    assert [(p["path"], p["content_type"]) for p in kube.patches()] == [
        ("/apis/external-secrets.io/v1/namespaces/billing/externalsecrets/stripe", "application/merge-patch+json"),
        ("/apis/external-secrets.io/v1/namespaces/orders/externalsecrets/orders-db", "application/merge-patch+json")]
    stamp = kube.find("ExternalSecret", "orders", "orders-db")["metadata"]["annotations"]["force-sync"]
    assert abs(int(stamp) - time.time()) < 60
    assert kube.find("ExternalSecret", "billing", "stripe")["spec"]["refreshInterval"] == "15m"  # merge, not replace
    res = run_module("eso_force_sync", args)
    assert not res.failed and res["changed"] is False and res["left_alone"] == ["billing/stripe", "orders/orders-db"]
    assert len(kube.patches()) == 2


def test_force_sync_of_a_missing_one_changes_nothing(kube):
    res = run_module("eso_force_sync", dict(kubeconfig=kube.config, external_secrets=["billing/stripe", "billing/nope"]))
    assert res.failed and "ExternalSecret(s) not found: billing/nope" in res["msg"] and res["changed"] is False
    assert kube.patches() == []


def test_playbook_force_syncs_through_the_api_three_ways(runner, kube):
    live = ("-e", "eso_objects_file=", "-e", "eso_kubeconfig=%s" % kube.config, "-e", "eso_force_sync=true")
    proc = runner.run("eso-sync.yml", "--check", *live)
    assert proc.returncode == 0 and recap(proc)["changed"] == 1, proc.stdout[-4000:]
    assert "force-sync: billing/stripe, orders/orders-db (check mode: would)" in proc.stdout and kube.patches() == []
    proc = runner.run("eso-sync.yml", *live)
    assert proc.returncode == 0 and recap(proc)["changed"] == 1, proc.stdout[-4000:]
    assert "read %s/data/billing/stripe: DENIED" % KV in proc.stdout
    assert len(kube.patches()) == 2
    proc = runner.run("eso-sync.yml", *live)
    assert proc.returncode == 0 and recap(proc)["changed"] == 0, proc.stdout[-4000:]
    assert "force-sync: none" in proc.stdout and len(kube.patches()) == 2


def test_playbook_output_has_no_secret(runner, cluster):
    """Last: every playbook run above (recorded and live) is searched, output and log."""
    needles = STATE["values"] + [STATE["eso_jwt"], STATE["reviewer_jwt"], cluster.root_token]
    assert find_leaks(needles, runner.outputs) == []
    logs = []
    for name in sorted(os.listdir(runner.state_dir)):
        if name.endswith(".log"):
            with open(os.path.join(runner.state_dir, name)) as handle:
                logs.append((name, handle.read()))
    assert logs and find_leaks(needles, logs) == []
