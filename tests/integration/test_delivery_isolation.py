"""Workload delivery proven against a real Vault: each rendered SecretStore reads its app's secrets and nothing else.

configure.yml and seed.yml run for every environment (``vault_data.environments``) on a real 3-node OpenBao
cluster with Kubernetes auth against the local TokenReview endpoint (tests/lib/tokenreview.py). The Kubernetes side
is what ``pulumi/manifests.py::render(env)`` produces (the objects pulumi/platform applies, and ESO acts on), not
the data in vault/: for every app namespace the test logs in exactly as ESO's provider would for that namespace's
``SecretStore`` (a TokenRequest-style JWT for ``serviceAccountRef.name`` in the store's namespace with the store's
``audiences``, posted to ``auth/<mountPath>/login`` with the store's ``role``), then reads every ``remoteRef`` of
every ``ExternalSecret`` in that namespace at ``<path>/data/<key>``. With the same token every other app's keys,
the same app's keys in the other environments' KV mounts, ``sys/``, metadata listing and writes must answer 403.
ESO's own service account must not log in with any role, and an app's JWT must not log in to another app's role.

No secret value appears in an assertion message: values are compared by length and SHA-256 only, and every check
collects value-free problem strings that one ``assert problems == []`` reports.

The session cluster is shared, except when tests/integration/test_configure_seed_playbooks.py is scheduled later in
the same session (it needs a cluster that configure.yml has not touched yet): then this module starts its own.
"""

import collections
import hashlib
import json
import os
import secrets
import shutil
import sys

import pytest
import requests
import yaml

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from heracles_testlib import ROOT

sys.path.insert(0, os.path.join(ROOT, "pulumi"))
import manifests  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.slow
DATA = os.path.join(ROOT, "vault")
ENVS = vault_data.environments(DATA)
APP_POLICY_LINE = 'path "${kv}/data/apps/${app}/*"'
WIDENED_POLICY_LINE = 'path "${kv}/data/apps/*"'
# sys/ endpoints an app token must not reach: (method, path, json body); {policy} is the app's own policy
SYS_PROBES = [
    ("LIST", "sys/policies/acl", None),
    ("GET", "sys/policies/acl/{policy}", None),
    ("POST", "sys/policies/acl/heracles-probe-{suffix}", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
    ("GET", "sys/storage/raft/configuration", None),
    ("GET", "sys/storage/raft/snapshot", None),
    ("GET", "sys/mounts", None),
    ("POST", "sys/mounts/heracles-probe-{suffix}", {"type": "kv"}),
    ("GET", "sys/auth", None),
    ("GET", "sys/audit", None),
    ("GET", "sys/raw/core/mounts", None),
]


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world(configured_cluster):
    """configure.yml + seed.yml for every declared environment (tests/integration/conftest.py), and what renders."""
    return dict(configured_cluster, workloads=dict((e, vault_data.load_workloads(DATA, e)) for e in ENVS),
                delivery=dict((e, delivery_by_namespace(manifests.render(e))) for e in ENVS))


# ---------------------------------------------------------------------------------------------------- rendered objects
def delivery_by_namespace(objects):
    """``{namespace: {"store": SecretStore or None, "stores": n, "externals": [ExternalSecret, ...]}}``."""
    out = collections.defaultdict(lambda: dict(store=None, stores=0, externals=[]))
    for obj in objects:
        if obj.get("apiVersion") != "external-secrets.io/v1":
            continue
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] == "SecretStore":
            out[namespace]["store"] = obj
            out[namespace]["stores"] += 1
        elif obj["kind"] == "ExternalSecret":
            if any("sourceRef" in entry for entry in obj["spec"].get("dataFrom") or []):
                continue  # database credentials through a generator: tests/integration/test_database_credentials.py
            out[namespace]["externals"].append(obj)
    return dict(out)


def remote_refs(external):
    """``([(key, property or None), ...], [extract key, ...], [unsupported dataFrom entry, ...])``."""
    spec = external["spec"]
    refs = [(d["remoteRef"]["key"], d["remoteRef"].get("property")) for d in spec.get("data") or []]
    extracts, unsupported = [], []
    for entry in spec.get("dataFrom") or []:
        if "extract" in entry:
            extracts.append(entry["extract"]["key"])
        elif "sourceRef" not in entry:  # a generator (VaultDynamicSecret) is not a KV read
            unsupported.append(sorted(entry))
    return refs, extracts, unsupported


def app_keys(delivery, namespace):
    """Every KV key the ExternalSecrets of ``namespace`` read (data and dataFrom.extract), sorted."""
    keys = set()
    for external in (delivery.get(namespace) or {}).get("externals", []):
        refs, extracts, _unsupported = remote_refs(external)
        keys.update(key for key, _prop in refs)
        keys.update(extracts)
    return sorted(keys)


def digest(value):
    """What an assertion may show of a value: its length and a short SHA-256."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "len %d sha256 %s" % (len(text), hashlib.sha256(text.encode()).hexdigest()[:12])


# ---------------------------------------------------------------------------------------------------- HTTP
class Vault:
    """Raw HTTP to the active node, as ESO's provider talks to Vault; answers are (status, json or None)."""

    def __init__(self, cluster, token=None):
        self.base = cluster.leader()
        self.verify = cluster.ca_cert  # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        self.session = requests.Session()
        if token:
            self.session.headers["X-Vault-Token"] = token

    def call(self, method, path, body=None):
        resp = self.session.request(method, "%s/v1/%s" % (self.base, path), json=body, timeout=30, stream=True,
                                    verify=self.verify)
        try:
            if resp.status_code == 200 and "json" in resp.headers.get("Content-Type", ""):
                return resp.status_code, resp.json()
            return resp.status_code, None
        finally:
            resp.close()

    def login(self, mount, role, jwt):
        status, body = self.call("POST", "auth/%s/login" % mount, {"role": role, "jwt": jwt})
        return status, (body or {}).get("auth")


class Report:
    """Counts and value-free problems of one environment's checks."""

    def __init__(self, env):
        self.env = env
        self.counts = collections.Counter()
        self.per_app = collections.defaultdict(collections.Counter)
        self.statuses = collections.Counter()  # HTTP status of refused logins
        self.problems = []
        self.cleanup = []

    def problem(self, kind, text):
        self.problems.append((kind, "%s: %s" % (self.env, text)))

    def expect_denied(self, client, app, kind, method, path, body=None):
        status, _body = client.call(method, path, body)
        if status == 403:
            self.counts["denied"] += 1
            self.counts["denied " + kind] += 1
            self.per_app[app]["denied " + kind] += 1
            return
        self.problem(kind, "app %s: %s %s answered %s, not 403" % (app, method, path, status))
        if method in ("POST", "PUT") and status in (200, 204):
            self.cleanup.append(path)

    def summary(self):
        c = self.counts
        kinds = ", ".join("%s %d" % (k[len("denied "):], n) for k, n in sorted(c.items())
                          if k.startswith("denied ") and n)
        refused = ", ".join("HTTP %d x%d" % item for item in sorted(self.statuses.items()))
        return ("delivery %s: logins tried %d (accepted %d, refused %d: %s); reads allowed %d; denied %d (%s); "
                "ExternalSecrets %d" % (self.env, c["logins"], c["logins accepted"], c["logins refused"], refused,
                                        c["reads allowed"], c["denied"], kinds, c["external secrets"]))


def login_as_store(world, report, store, label, role=None):
    """Log in as ESO does for ``store``: its namespace, serviceAccountRef, audiences, mountPath; ``role`` or its own."""
    auth = store["spec"]["provider"]["vault"]["auth"]["kubernetes"]
    sa_ref = auth["serviceAccountRef"]
    jwt = world["tokenreview"].mint(store["metadata"]["namespace"], sa_ref["name"], audiences=sa_ref.get("audiences"))
    return login(world, report, auth["mountPath"], role or auth["role"], jwt, label)


def login(world, report, mount, role, jwt, label):
    report.counts["logins"] += 1
    status, auth = Vault(world["cluster"]).login(mount, role, jwt)
    if status == 200 and auth:
        report.counts["logins accepted"] += 1
        return auth
    if status in (400, 403):
        report.counts["logins refused"] += 1
        report.statuses[status] += 1
    else:
        report.problem("login", "%s: login answered %s" % (label, status))
    return None


def revoke(world, auth):
    Vault(world["cluster"], auth["client_token"]).call("POST", "auth/token/revoke-self")


# ---------------------------------------------------------------------------------------------------- the check
def check_environment(world, env):
    """Every app of ``env`` through its rendered SecretStore; returns a Report (never asserts)."""
    report = Report(env)
    workloads, delivery = world["workloads"][env], world["delivery"][env]
    suffix = secrets.token_hex(3)
    for app in workloads["apps"]:
        name, namespace = app["name"], app["namespace"]
        here = delivery.get(namespace) or {}
        if here.get("stores") != 1:
            report.problem("render", "namespace %s has %s SecretStores, expected 1" % (namespace, here.get("stores")))
            continue
        store = here["store"]
        provider = store["spec"]["provider"]["vault"]
        kv = provider["path"]
        if provider.get("version") != "v2":
            report.problem("render", "SecretStore %s/%s: KV version %r" % (namespace, store["metadata"]["name"],
                                                                           provider.get("version")))
        auth = login_as_store(world, report, store, "app %s (its own SecretStore)" % name)
        if auth is None:
            report.problem("login", "app %s: its SecretStore cannot log in" % name)
            continue
        report.per_app[name]["logins"] += 1
        extra = sorted(set(auth["policies"]) - {"default", app["policy"]})
        if app["policy"] not in auth["policies"] or extra:
            report.problem("login", "app %s: token policies %s, expected default + %s"
                           % (name, auth["policies"], app["policy"]))
        client = Vault(world["cluster"], auth["client_token"])
        own = app_keys(delivery, namespace)
        # 1. every ExternalSecret of the namespace syncs: each remote key readable, each property present
        for external in here["externals"]:
            report.counts["external secrets"] += 1
            ref = external["spec"].get("secretStoreRef") or {}
            where = "ExternalSecret %s/%s" % (namespace, external["metadata"]["name"])
            sources = external["spec"].get("dataFrom") or []
            if sources and not external["spec"].get("data") and all("sourceRef" in d for d in sources):
                # a database credential through a VaultDynamicSecret generator, which logs in as the app like the
                # store: tests/integration/test_database_credentials.py checks those against a real PostgreSQL
                continue
            if ref.get("kind", "SecretStore") != "SecretStore" or ref.get("name") != store["metadata"]["name"]:
                report.problem("render", "%s uses store %s, not its namespace's SecretStore" % (where, ref))
            refs, extracts, unsupported = remote_refs(external)
            if unsupported:
                report.problem("render", "%s: dataFrom entries this test does not check: %s" % (where, unsupported))
            for key, prop in refs + [(k, None) for k in extracts]:
                status, body = client.call("GET", "%s/data/%s" % (kv, key))
                data = ((body or {}).get("data") or {}).get("data") or {}
                if status != 200:
                    report.problem("own", "%s: %s/data/%s answered %s" % (where, kv, key, status))
                elif prop is not None and (prop not in data or data[prop] in ("", None)):
                    report.problem("own", "%s: %s has no (or an empty) property %s" % (where, key, prop))
                elif prop is None and not data:
                    report.problem("own", "%s: extract of %s returned no data" % (where, key))
                else:
                    report.counts["reads allowed"] += 1
                    report.per_app[name]["reads allowed"] += 1
        # 2. every other app's keys in this environment
        for other in workloads["apps"]:
            if other["name"] == name:
                continue
            other_store = (delivery.get(other["namespace"]) or {}).get("store")
            other_kv = other_store["spec"]["provider"]["vault"]["path"] if other_store else kv
            for key in app_keys(delivery, other["namespace"]):
                report.expect_denied(client, name, "other-app read", "GET", "%s/data/%s" % (other_kv, key))
                report.expect_denied(client, name, "write", "POST", "%s/data/%s" % (other_kv, key),
                                     {"options": {"cas": 0}, "data": {"heracles-probe": "x"}})
        # 3. the same app's keys in the other environments' KV mounts
        for other_env in ENVS:
            if other_env == env:
                continue
            there = world["delivery"][other_env].get(namespace) or {}
            other_kv = there["store"]["spec"]["provider"]["vault"]["path"] if there.get("store") else None
            if other_kv is None or other_kv == kv:
                report.problem("render", "app %s: no KV mount of its own in %s" % (name, other_env))
                continue
            for key in sorted(set(own) | set(app_keys(world["delivery"][other_env], namespace))):
                report.expect_denied(client, name, "other-env read", "GET", "%s/data/%s" % (other_kv, key))
        # 4. metadata: no listing, no metadata read, not even of its own keys
        parents = {os.path.dirname(key) for key in own}
        prefixes = sorted({""} | parents | {os.path.dirname(parent) for parent in parents})
        for prefix in prefixes:
            report.expect_denied(client, name, "metadata", "LIST", "%s/metadata/%s" % (kv, prefix))
        for key in own:
            report.expect_denied(client, name, "metadata", "GET", "%s/metadata/%s" % (kv, key))
        # 5. writes: its own keys (cas=0: a wrongly allowed write still cannot replace them), a new key beside them
        for key in own:
            report.expect_denied(client, name, "write", "POST", "%s/data/%s" % (kv, key),
                                 {"options": {"cas": 0}, "data": {"heracles-probe": "x"}})
        for prefix in sorted({os.path.dirname(key) for key in own}):
            report.expect_denied(client, name, "write", "POST", "%s/data/%s/heracles-probe-%s" % (kv, prefix, suffix),
                                 {"options": {"cas": 0}, "data": {"heracles-probe": "x"}})
        # 6. sys/
        for method, path, body in SYS_PROBES:
            report.expect_denied(client, name, "sys", method, path.format(policy=app["policy"], suffix=suffix), body)
        # 7. what the policy engine says of its own keys: read, nothing else (delete/patch are asked, never tried)
        status, body = client.call("POST", "sys/capabilities-self",
                                   {"paths": ["%s/data/%s" % (kv, key) for key in own]})
        caps = dict(((body or {}).get("data") or body or {}))
        for key in own:
            if caps.get("%s/data/%s" % (kv, key)) != ["read"]:
                report.problem("own", "app %s: capabilities on %s/data/%s are %s, expected ['read']"
                               % (name, kv, key, caps.get("%s/data/%s" % (kv, key))))
        revoke(world, auth)
        # 8. this app's service account presented for every other app's role: refused
        for other in workloads["apps"]:
            if other["name"] == name:
                continue
            other_role = other["role"]
            stolen = login_as_store(world, report, store, "app %s as role %s" % (name, other_role), role=other_role)
            if stolen is not None:
                report.problem("login", "app %s's service account logged in as app %s's role" % (name, other["name"]))
                revoke(world, stolen)
            else:
                report.per_app[name]["refused other roles"] += 1
    # 9. ESO's own service account: no role of the auth mount (as Vault lists them, not as the data declares) takes it
    root = Vault(world["cluster"], world["cluster"].root_token)
    status, body = root.call("LIST", "auth/%s/role" % workloads["auth_mount"])
    roles = ((body or {}).get("data") or {}).get("keys") or []
    if status != 200 or not roles:
        report.problem("login", "cannot list the roles of auth/%s (%s)" % (workloads["auth_mount"], status))
    eso = workloads["eso"]
    jwt = world["tokenreview"].mint(eso["namespace"], eso["service_account"], audiences=[workloads["audience"]])
    for role in roles:
        auth = login(world, report, workloads["auth_mount"], role, jwt, "ESO's service account as role %s" % role)
        if auth is not None:
            report.problem("login", "ESO's own service account %s/%s logged in as role %s"
                           % (eso["namespace"], eso["service_account"], role))
            revoke(world, auth)
        else:
            report.counts["eso refused"] += 1
    for path in report.cleanup:  # only a broken policy gets here: leave the shared cluster as it was
        if path.startswith("sys/policies/acl/") or path.startswith("sys/mounts/"):
            root.call("DELETE", path)
        elif "/data/" in path and "heracles-probe-" in path:
            root.call("DELETE", path.replace("/data/", "/metadata/", 1))
    return report


# ---------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("env", ENVS)
def test_each_secret_store_reads_its_app_and_nothing_else(world, env):
    report = check_environment(world, env)
    print(report.summary())
    for app, counts in sorted(report.per_app.items()):
        print("  %s/%s: %s" % (env, app, ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    assert [text for _kind, text in report.problems] == []
    declared = sum(len(app["secrets"]) for app in world["workloads"][env]["apps"])
    assert report.counts["external secrets"] == declared > 0
    apps = world["workloads"][env]["apps"]
    for app in apps:
        counts = report.per_app[app["name"]]
        assert counts["logins"] == 1 and counts["reads allowed"] > 0, (app["name"], dict(counts))
        assert counts["denied sys"] == len(SYS_PROBES) and counts["denied metadata"] > 0 and counts["denied write"] > 0
        if len(apps) > 1:
            assert counts["denied other-app read"] > 0 and counts["refused other roles"] == len(apps) - 1
        if len(ENVS) > 1:
            assert counts["denied other-env read"] > 0
    assert report.counts["eso refused"] > 0


@pytest.mark.parametrize("env", ENVS)
def test_every_remote_key_and_property_is_seeded(world, env):
    """Each remoteRef names a field of vault/seed/<env>.yml, and Vault holds a non-empty value for it (read as root)."""
    with open(os.path.join(DATA, "seed", env + ".yml")) as handle:
        seed = yaml.safe_load(handle) or {}
    clear = seed.get("secrets") or {}
    declared = {}
    for section in ("secrets", "generate"):
        for path, fields in (seed.get(section) or {}).items():
            declared.setdefault(path, set()).update(fields or {})
    root = Vault(world["cluster"], world["cluster"].root_token)
    problems, checked, externals = [], 0, 0
    for namespace, here in sorted(world["delivery"][env].items()):
        kv = here["store"]["spec"]["provider"]["vault"]["path"]
        for external in here["externals"]:
            externals += 1
            refs, extracts, _unsupported = remote_refs(external)
            for key, prop in refs + [(k, None) for k in extracts]:
                checked += 1
                where = "%s ExternalSecret %s/%s: %s" % (env, namespace, external["metadata"]["name"], key)
                if key not in declared:
                    problems.append("%s is not in seed/%s.yml" % (where, env))
                    continue
                if prop is not None and prop not in declared[key]:
                    problems.append("%s: property %s is not in seed/%s.yml" % (where, prop, env))
                    continue
                status, body = root.call("GET", "%s/data/%s" % (kv, key))
                data = ((body or {}).get("data") or {}).get("data") or {}
                if status != 200:
                    problems.append("%s: root read answered %s" % (where, status))
                    continue
                value = data.get(prop) if prop is not None else data
                if not value:
                    problems.append("%s: property %s is missing or empty in Vault" % (where, prop))
                elif prop in (clear.get(key) or {}) and digest(value) != digest(clear[key][prop]):
                    problems.append("%s: property %s in Vault (%s) is not the seed's clear value (%s)"
                                    % (where, prop, digest(value), digest(clear[key][prop])))
    assert problems == []
    assert externals == sum(len(app["secrets"]) for app in world["workloads"][env]["apps"])
    assert checked > 0


def test_a_widened_app_policy_is_caught(world, tmp_path):
    """Mutation check: configure.yml from a copy of vault/ whose app policy reads all of apps/*; then restore."""
    env = "dev" if "dev" in ENVS else ENVS[0]
    apps = world["workloads"][env]["apps"]
    if len(apps) < 2:
        pytest.skip("%s declares fewer than two apps: no neighbour to leak to" % env)
    copy = tmp_path / "vault"
    shutil.copytree(DATA, str(copy))
    policy_file = copy / "policies" / "app.hcl"
    text = policy_file.read_text()
    assert text.count(APP_POLICY_LINE) == 1, "vault/policies/app.hcl changed: update APP_POLICY_LINE"
    policy_file.write_text(text.replace(APP_POLICY_LINE, WIDENED_POLICY_LINE))
    runner = world["runner"]
    try:
        extra = json.dumps({"configure_data_dir": str(copy), "configure_environments": [env]})
        proc = runner.run("configure.yml", "-e", extra)
        assert proc.returncode == 0, proc.stdout[-3000:]
        broken = check_environment(world, env)
    finally:
        restore = runner.run("configure.yml", "-e", json.dumps({"configure_environments": [env]}))
    assert restore.returncode == 0, restore.stdout[-3000:]
    kinds = collections.Counter(kind for kind, _text in broken.problems)
    print("widened %s policy: %s" % (env, dict(kinds)))
    # every app now reads every neighbour's keys, and the check says so; nothing else changed
    expected = sum(len(app_keys(world["delivery"][env], other["namespace"]))
                   for app in apps for other in apps if other["name"] != app["name"])
    assert kinds == {"other-app read": expected}, [text for _kind, text in broken.problems]
    # and after the restore the environment is isolated again
    assert [text for _kind, text in check_environment(world, env).problems] == []
