"""vault_auth_kubernetes and Kubernetes login against the real session cluster and a real TokenReview endpoint.

The cases run in file order on one mount of their own (unique names, so other tests sharing
the cluster are not disturbed): refusals first (nothing may change), then the module three
ways (check mode, real run, rerun), then logins through the shared client and through a
module, reviewer-JWT drift, exclusive roles and removal.
"""

import secrets
import time

import hvac.exceptions
import pytest

from heracles_testlib import run_module
from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod

SUFFIX = secrets.token_hex(3)
MOUNT = "k8s-%s" % SUFFIX
KV = "kv-k8s-%s" % SUFFIX
POLICY_A = "app-a-%s" % SUFFIX
POLICY_B = "app-b-%s" % SUFFIX
POLICY_OPS = "ops-%s" % SUFFIX
REVIEWER = ("kube-system", "vault-reviewer")
AUDIENCE = "vault"
STATE = {}


def roles(**override_a):
    app_a = dict(name="app-a", bound_service_account_names=["app-a"], bound_service_account_namespaces=["team-a"],
                 audience=AUDIENCE, policies=[POLICY_A], token_ttl="1h", token_max_ttl="4h")
    app_a.update(override_a)
    return [
        app_a,
        dict(name="app-b", bound_service_account_names=["app-b"], bound_service_account_namespaces=["team-b"],
             audience=AUDIENCE, policies=[POLICY_B], token_ttl=600),
        dict(name="ops", bound_service_account_names=["ops"], bound_service_account_namespaces=["platform"],
             audience=AUDIENCE, policies=[POLICY_OPS], token_ttl="10m", alias_name_source="serviceaccount_name"),
    ]


def args(cluster, tokenreview, **kw):
    base = dict(mount=MOUNT, kubernetes_host=tokenreview.url, kubernetes_ca_cert=tokenreview.ca_pem,
                token_reviewer_jwt=STATE["reviewer_jwt"], disable_local_ca_jwt=True, description="apps", roles=roles())
    base.update(kw)
    return cluster.conn(**dict((k, v) for k, v in base.items() if v is not None))


def leaks(res, *needles):
    return [n[:8] for n in needles if n and (n in res.stdout or n in res.stderr)]


def auth_mounts(cluster):
    return dict((k, (v["type"], v["description"])) for k, v in cluster.hvac().sys.list_auth_methods()["data"].items())


def login_params(cluster, role, jwt):
    return dict(url=cluster.url, nodes=cluster.urls[1:], ca_cert=cluster.ca_cert, auth_method="kubernetes", role=role,
                jwt=jwt, auth_mount_point=MOUNT, retries=2, retry_delay=0.5)


@pytest.fixture(scope="module", autouse=True)
def k8s_world(cluster, tokenreview):
    """KV v2 with two app secrets, three policies, and a reviewer JWT (set up as root, outside the module)."""
    root = cluster.hvac()
    root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
    STATE["values"] = {"app-a": secrets.token_urlsafe(18), "app-b": secrets.token_urlsafe(18)}
    deadline = time.time() + 30
    for app, value in STATE["values"].items():
        while True:
            try:
                root.secrets.kv.v2.create_or_update_secret("%s/config" % app, secret={"password": value}, mount_point=KV)
                break
            except hvac.exceptions.InvalidRequest:  # the mount is still upgrading (DESIGN: 1-2 s)
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
    root.sys.create_or_update_policy(POLICY_A, 'path "%s/data/app-a/*" { capabilities = ["read"] }' % KV)
    root.sys.create_or_update_policy(POLICY_B, 'path "%s/data/app-b/*" { capabilities = ["read"] }' % KV)
    root.sys.create_or_update_policy(POLICY_OPS, 'path "sys/storage/raft/*" { capabilities = ["read"] }')
    STATE["reviewer_jwt"] = tokenreview.mint(*REVIEWER)
    yield
    root = cluster.hvac()
    try:
        root.sys.disable_auth_method(MOUNT)  # normally gone already (test_state_absent_three_ways)
    except hvac.exceptions.VaultError:
        pass
    root.sys.disable_secrets_engine(KV)
    for policy in (POLICY_A, POLICY_B, POLICY_OPS):
        root.sys.delete_policy(policy)


# -- refusals: nothing may change ---------------------------------------------------------
def test_missing_kubernetes_host_fails_before_any_write(cluster, tokenreview):
    before = auth_mounts(cluster)
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, kubernetes_host=None))
    assert res.failed
    assert "kubernetes_host is required" in res["msg"] and "nothing was changed" in res["msg"]
    assert auth_mounts(cluster) == before and MOUNT + "/" not in before


@pytest.mark.parametrize("override, expect", [
    (dict(kubernetes_ca_cert=None), "needs kubernetes_ca_cert"),
    (dict(kubernetes_ca_cert="not a pem"), "not a PEM certificate"),
    (dict(kubernetes_host="kubernetes.default.svc"), "must be a URL"),
    (dict(token_reviewer_jwt="/var/run/secrets/token"), "does not look like a JWT"),
    (dict(expired_reviewer=True), "expired at"),
    (dict(roles=roles(token_ttl="5h")), "greater than token_max_ttl"),
    (dict(roles=roles(token_ttl="an hour")), "not a duration"),
    (dict(roles=roles(bound_service_account_namespaces=[])), "set bound_service_account_namespaces"),
    (dict(roles=roles() + [dict(name="app-a", bound_service_account_names=["x"], bound_service_account_namespaces=["y"])]),
     "declared twice"),
    (dict(roles=[dict(name="r", bound_service_account_names=["x"], bound_service_account_namespaces=["y"], ttl=5)]),
     "Unsupported parameters"),
    (dict(kubernetes_ca_cert_file="/nonexistent/ca.pem", kubernetes_ca_cert=None), "Cannot read kubernetes_ca_cert_file"),
], ids=["no-ca", "bad-ca", "host-not-url", "jwt-is-a-path", "jwt-expired", "ttl-above-max", "bad-duration",
        "no-namespaces", "duplicate-role", "unknown-role-field", "ca-file-missing"])
def test_bad_input_fails_clearly_and_changes_nothing(cluster, tokenreview, override, expect):
    override = dict(override)
    if override.pop("expired_reviewer", False):
        override["token_reviewer_jwt"] = tokenreview.mint(*REVIEWER, ttl=-60)
    before = auth_mounts(cluster)
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, **override))
    assert res.failed
    assert expect in res["msg"], res["msg"]
    assert auth_mounts(cluster) == before and MOUNT + "/" not in before
    assert not leaks(res, override.get("token_reviewer_jwt"), STATE["reviewer_jwt"])


def test_mount_of_another_type_is_refused(cluster, tokenreview):
    other = "approle-%s" % SUFFIX
    root = cluster.hvac()
    root.sys.enable_auth_method("approle", path=other)
    try:
        res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, mount=other))
        assert res.failed and "is a approle auth method, not kubernetes" in res["msg"]
        assert auth_mounts(cluster)[other + "/"][0] == "approle"
    finally:
        root.sys.disable_auth_method(other)


# -- three ways -----------------------------------------------------------------------------
def test_check_mode_reports_everything_and_writes_nothing(cluster, tokenreview):
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview), check=True, diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["config_changed"] is True
    assert res["roles_created"] == ["app-a", "app-b", "ops"] and res["roles_updated"] == []
    assert res["diff"]["after"]["config"]["token_reviewer_jwt"].startswith("sha256:")
    assert MOUNT + "/" not in auth_mounts(cluster)
    assert not leaks(res, STATE["reviewer_jwt"])


def test_real_run_enables_configures_and_creates_roles(cluster, tokenreview):
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview), diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["roles_created"] == ["app-a", "app-b", "ops"]
    assert not leaks(res, STATE["reviewer_jwt"])
    root = cluster.hvac()
    config = root.read("auth/%s/config" % MOUNT)["data"]
    assert config["kubernetes_host"] == tokenreview.url and config["token_reviewer_jwt_set"] is True
    assert config["disable_local_ca_jwt"] is True
    fp = res["reviewer_jwt_fingerprint"]
    assert len(fp) == len("sha256:") + 16
    assert auth_mounts(cluster)[MOUNT + "/"] == ("kubernetes", "apps [heracles reviewer-jwt %s]" % fp)
    role = root.read("auth/%s/role/app-a" % MOUNT)["data"]
    assert role["token_ttl"] == 3600 and role["token_max_ttl"] == 14400 and role["token_policies"] == [POLICY_A]
    assert sorted(root.list("auth/%s/role" % MOUNT)["data"]["keys"]) == ["app-a", "app-b", "ops"]
    STATE["fingerprint"] = fp


def test_rerun_reports_no_change(cluster, tokenreview):
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview), diff=True)
    assert not res.failed, res
    assert res["changed"] is False and res["config_changed"] is False
    assert res["roles_created"] == res["roles_updated"] == res["roles_deleted"] == []
    assert res["reviewer_jwt_fingerprint"] == STATE["fingerprint"]


def test_equal_values_in_other_forms_are_no_change(cluster, tokenreview):
    """Durations by value, lists as sets, a trailing slash on the host."""
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, kubernetes_host=tokenreview.url + "/",
                                                   roles=roles(token_ttl=3600, token_max_ttl="240m",
                                                               bound_service_account_names=["app-a", "app-a"])),
                     check=True)
    assert not res.failed, res
    assert res["changed"] is False, res


def test_role_change_is_detected_three_ways(cluster, tokenreview):
    changed = roles(token_ttl="2h")
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, roles=changed), check=True, diff=True)
    assert res["changed"] is True and res["roles_updated"] == ["app-a"] and res["config_changed"] is False
    assert res["diff"]["before"]["roles"]["app-a"]["token_ttl"] == 3600
    assert res["diff"]["after"]["roles"]["app-a"]["token_ttl"] == 7200
    assert cluster.hvac().read("auth/%s/role/app-a" % MOUNT)["data"]["token_ttl"] == 3600
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, roles=changed))
    assert res["changed"] is True and res["roles_updated"] == ["app-a"]
    assert cluster.hvac().read("auth/%s/role/app-a" % MOUNT)["data"]["token_ttl"] == 7200
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview))
    assert res["changed"] is True and res["roles_updated"] == ["app-a"]
    assert run_module("vault_auth_kubernetes", args(cluster, tokenreview))["changed"] is False


# -- logins -------------------------------------------------------------------------------------
def test_app_a_logs_in_through_the_client_with_exactly_its_policy(cluster, tokenreview):
    jwt = tokenreview.mint("team-a", "app-a", audiences=[AUDIENCE])
    seen = len(tokenreview.reviews_of("system:serviceaccount:team-a:app-a"))
    client = client_mod.build_client(login_params(cluster, "app-a", jwt))
    info = client.auth.token.lookup_self()["data"]
    assert sorted(info["policies"]) == sorted(["default", POLICY_A])
    assert info["meta"]["service_account_namespace"] == "team-a"
    secret = client.secrets.kv.v2.read_secret_version("app-a/config", mount_point=KV, raise_on_deleted_version=True)
    assert secret["data"]["data"]["password"] == STATE["values"]["app-a"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version("app-b/config", mount_point=KV, raise_on_deleted_version=True)
    reviews = tokenreview.reviews_of("system:serviceaccount:team-a:app-a")
    assert len(reviews) == seen + 1, "Vault did not call the TokenReview endpoint"
    assert reviews[-1]["authenticated"] and reviews[-1]["audiences"] == [AUDIENCE]
    assert reviews[-1]["reviewer"] == "system:serviceaccount:%s:%s" % REVIEWER


def test_app_a_logs_in_through_a_module(cluster, tokenreview):
    """A module run with auth_method=kubernetes: app-a is logged in but may not read raft state; ops may."""
    subject = "system:serviceaccount:team-a:app-a"
    seen = len(tokenreview.reviews_of(subject))
    jwt = tokenreview.mint("team-a", "app-a", audiences=[AUDIENCE])
    res = run_module("vault_status_info", cluster.conn(auth_method="kubernetes", role="app-a", jwt=jwt,
                                                       auth_mount_point=MOUNT))
    assert not res.failed, res
    assert "permission denied" in res["raft_error"] and "not authorized" not in res["raft_error"], res["raft_error"]
    assert len(tokenreview.reviews_of(subject)) == seen + 1 and tokenreview.reviews_of(subject)[-1]["authenticated"]
    assert jwt not in res.stdout

    ops = tokenreview.mint("platform", "ops", audiences=[AUDIENCE])
    res = run_module("vault_status_info", cluster.conn(auth_method="kubernetes", role="ops", jwt=ops,
                                                       auth_mount_point=MOUNT))
    assert not res.failed, res
    assert "raft_error" not in res and res["voters"] == ["node1", "node2", "node3"]


BAD_JWTS = {
    "wrong-namespace": dict(namespace="team-b", name="app-a"),
    "wrong-name": dict(namespace="team-a", name="app-b"),
    "expired": dict(namespace="team-a", name="app-a", ttl=-30),
    "wrong-audience": dict(namespace="team-a", name="app-a", audiences=["not-vault"]),
    "foreign-key": dict(namespace="team-a", name="app-a", foreign_key=True),
}


@pytest.mark.parametrize("case", sorted(BAD_JWTS))
def test_bad_service_account_jwt_is_refused(cluster, tokenreview, case):
    from cryptography.hazmat.primitives.asymmetric import rsa

    mint = dict(BAD_JWTS[case])
    if mint.pop("foreign_key", False):
        mint["key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    mint.setdefault("audiences", [AUDIENCE])
    jwt = tokenreview.mint(**mint)
    with pytest.raises(hvac.exceptions.Forbidden):
        client_mod.build_client(login_params(cluster, "app-a", jwt))
    res = run_module("vault_status_info", cluster.conn(auth_method="kubernetes", role="app-a", jwt=jwt,
                                                       auth_mount_point=MOUNT, include_raft=True))
    assert "permission denied" in res["raft_error"] or "not authorized" in res["raft_error"], res
    assert res.get("voters") == []


# -- reviewer JWT drift -----------------------------------------------------------------------
def test_new_reviewer_jwt_is_a_change_and_is_used(cluster, tokenreview):
    old_jwt, old_fp = STATE["reviewer_jwt"], STATE["fingerprint"]
    new_jwt = tokenreview.mint(*REVIEWER, uid="rotated-uid")
    assert new_jwt != old_jwt
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, token_reviewer_jwt=new_jwt), check=True, diff=True)
    assert res["changed"] is True and res["config_changed"] is True and res["roles_updated"] == []
    assert res["diff"]["before"]["config"]["token_reviewer_jwt"] == old_fp
    assert res["diff"]["after"]["config"]["token_reviewer_jwt"] == res["reviewer_jwt_fingerprint"] != old_fp
    assert auth_mounts(cluster)[MOUNT + "/"][1].endswith("%s]" % old_fp)

    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, token_reviewer_jwt=new_jwt), diff=True)
    assert not res.failed, res
    assert res["changed"] is True and res["config_changed"] is True
    assert not leaks(res, new_jwt, old_jwt)
    new_fp = res["reviewer_jwt_fingerprint"]
    assert auth_mounts(cluster)[MOUNT + "/"][1] == "apps [heracles reviewer-jwt %s]" % new_fp

    # Vault really presents the new JWT: with the old one revoked, logins still work.
    tokenreview.revoke(old_jwt)
    client = client_mod.build_client(login_params(cluster, "app-a", tokenreview.mint("team-a", "app-a", audiences=[AUDIENCE])))
    assert POLICY_A in client.auth.token.lookup_self()["data"]["policies"]

    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, token_reviewer_jwt=new_jwt))
    assert res["changed"] is False
    STATE["reviewer_jwt"], STATE["fingerprint"] = new_jwt, new_fp


def test_reviewer_jwt_from_a_file_is_the_same_jwt(cluster, tokenreview, tmp_path):
    path = tmp_path / "reviewer.jwt"
    path.write_text(STATE["reviewer_jwt"] + "\n")
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, token_reviewer_jwt=None,
                                                   token_reviewer_jwt_file=str(path)))
    assert not res.failed, res
    assert res["changed"] is False


def test_description_edited_by_hand_is_repaired(cluster, tokenreview):
    """Without the fingerprint the JWT cannot be compared: the module writes it again (honest, not silent)."""
    cluster.hvac().adapter.post("/v1/sys/auth/%s/tune" % MOUNT, json={"description": "apps"})
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview), diff=True)
    assert res["changed"] is True and res["config_changed"] is True
    assert res["diff"]["before"]["config"]["token_reviewer_jwt"].startswith("set (not by this module")
    assert auth_mounts(cluster)[MOUNT + "/"][1] == "apps [heracles reviewer-jwt %s]" % STATE["fingerprint"]
    assert run_module("vault_auth_kubernetes", args(cluster, tokenreview))["changed"] is False


# -- exclusive roles and removal ------------------------------------------------------------------
def test_exclusive_roles_delete_undeclared_three_ways(cluster, tokenreview):
    root = cluster.hvac()
    root.write_data("auth/%s/role/stray" % MOUNT, data=dict(bound_service_account_names=["x"],
                                                            bound_service_account_namespaces=["y"]))
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview))
    assert res["changed"] is False and "stray" in res["roles"]
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, exclusive_roles=True), check=True)
    assert res["changed"] is True and res["roles_deleted"] == ["stray"]
    assert "stray" in root.list("auth/%s/role" % MOUNT)["data"]["keys"]
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, exclusive_roles=True))
    assert res["changed"] is True and res["roles_deleted"] == ["stray"]
    assert sorted(root.list("auth/%s/role" % MOUNT)["data"]["keys"]) == ["app-a", "app-b", "ops"]
    res = run_module("vault_auth_kubernetes", args(cluster, tokenreview, exclusive_roles=True))
    assert res["changed"] is False


def test_state_absent_three_ways(cluster, tokenreview):
    conn = cluster.conn(mount=MOUNT, state="absent")
    res = run_module("vault_auth_kubernetes", conn, check=True)
    assert res["changed"] is True and MOUNT + "/" in auth_mounts(cluster)
    res = run_module("vault_auth_kubernetes", conn)
    assert res["changed"] is True and MOUNT + "/" not in auth_mounts(cluster)
    res = run_module("vault_auth_kubernetes", conn)
    assert not res.failed and res["changed"] is False
