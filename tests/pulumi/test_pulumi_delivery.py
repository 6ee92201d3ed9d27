"""Workload delivery as pulumi/platform registers it: the same objects as `make manifests`, tenant isolation.

Checked on what the program registers (never on the renderer's constants): one SecretStore per app namespace
logging in as that app through a role vault/ binds to exactly that service account, no cluster-wide Vault store,
RBAC by resourceNames, default-deny NetworkPolicies, Pod Security labels, the seeds' alerts.
"""

import os
import sys

import pytest

import harness
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from harness import unwrap
from runs import platform

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "pulumi"))
import manifests  # noqa: E402  pylint: disable=wrong-import-position,import-error

DATA_DIR = os.path.join(harness.REPO_ROOT, "vault")
ESO = "kubernetes:external-secrets.io/v1:"


def registered_objects(run):
    """The delivery objects as the engine saw them: ``{object id: object}``."""
    prefix = "%s-delivery-" % run.config["heracles-platform:clusterName"]
    out = {}
    for res in run.resources:
        if res.custom and res.name.startswith(prefix):
            obj = unwrap(res.inputs)
            meta = obj["metadata"]
            out["%s/%s/%s/%s" % (obj["apiVersion"], obj["kind"], meta.get("namespace", "_"), meta["name"])] = obj
    return out


def of_kind(objects, kind):
    return [obj for obj in objects.values() if obj["kind"] == kind]


def declared_roles(env):
    desired = vault_data.load(DATA_DIR, [env])
    return {role["name"]: role for role in desired["auth"][0]["roles"]}, desired


def test_pulumi_applies_exactly_what_make_manifests_writes(stack, tmp_path):
    registered = registered_objects(platform(stack))
    written = manifests.write(manifests.render(stack), str(tmp_path))
    import yaml  # pylint: disable=import-outside-toplevel

    files = {}
    for name in written:
        with open(str(tmp_path / name)) as handle:
            obj = yaml.safe_load(handle)
        meta = obj["metadata"]
        files["%s/%s/%s/%s" % (obj["apiVersion"], obj["kind"], meta.get("namespace", "_"), meta["name"])] = obj
    assert sorted(registered) == sorted(files)
    for key, obj in files.items():
        assert registered[key] == obj, key


def test_each_app_namespace_has_its_own_store_logging_in_as_the_app(stack):
    run = platform(stack)
    objects = registered_objects(run)
    env = run.config["heracles-platform:environment"]
    roles, desired = declared_roles(env)
    assert not [res for res in run.of_type(ESO + "ClusterSecretStore")
                if "vault" in unwrap(res.inputs)["spec"]["provider"]], "a cluster-wide Vault store reads every app"
    stores = of_kind(objects, "SecretStore")
    apps = vault_data.load_workloads(DATA_DIR, env)["apps"]
    assert sorted(s["metadata"]["namespace"] for s in stores) == sorted(app["namespace"] for app in apps)
    for store in stores:
        namespace = store["metadata"]["namespace"]
        vault = store["spec"]["provider"]["vault"]
        auth = vault["auth"]["kubernetes"]
        assert "namespace" not in auth["serviceAccountRef"], "a SecretStore may only use its own namespace's SA"
        role = roles[auth["role"]]
        # the Vault role admits only this namespace's service account, and only the app's policy
        assert role["bound_service_account_namespaces"] == [namespace]
        assert role["bound_service_account_names"] == [auth["serviceAccountRef"]["name"]]
        assert auth["serviceAccountRef"]["audiences"] == [role["audience"]]
        assert auth["mountPath"] == desired["auth"][0]["path"] and vault["path"] == desired["mounts"][0]["path"]
        assert len(role["policies"]) == 1
        policy = desired["policies"][role["policies"][0]]
        paths = [line.split('"')[1] for line in policy.splitlines() if line.startswith("path ")]
        app = [app for app in apps if app["namespace"] == namespace][0]
        assert paths == ["%s/data/apps/%s/*" % (vault["path"], auth["role"])] + [
            role["creds_path"] for role in app["database"]], policy  # and creds of its own database roles only
    generators = dict(((g["metadata"]["namespace"], g["metadata"]["name"]), g)
                      for g in of_kind(objects, "VaultDynamicSecret"))
    for es in of_kind(objects, "ExternalSecret"):
        namespace = es["metadata"]["namespace"]
        app = [app for app in apps if app["namespace"] == namespace][0]
        sources = [d["sourceRef"]["generatorRef"] for d in es["spec"].get("dataFrom", []) if "sourceRef" in d]
        if sources:  # a database credential: a generator in the same namespace that logs in as the app
            assert len(sources) == 1 and sources[0]["kind"] == "VaultDynamicSecret"
            generator = generators[(namespace, sources[0]["name"])]
            login = generator["spec"]["provider"]["auth"]["kubernetes"]
            assert login["role"] == app["role"] and login["serviceAccountRef"]["name"] == app["service_account"]
            assert "namespace" not in login["serviceAccountRef"]
            assert generator["spec"]["path"] in [role["creds_path"] for role in app["database"]]
            role = [r for r in app["database"] if r["creds_path"] == generator["spec"]["path"]][0]
            assert vault_data.go_duration_seconds(es["spec"]["refreshInterval"]) < role["default_ttl"]
            continue
        assert es["spec"]["secretStoreRef"] == {"name": "vault", "kind": "SecretStore"}
        keys = [d["remoteRef"]["key"] for d in es["spec"].get("data", [])] + [
            d["extract"]["key"] for d in es["spec"].get("dataFrom", [])]
        assert keys and all(key.startswith("apps/%s/" % app["name"]) for key in keys)


def test_only_the_app_and_its_operators_may_get_its_secrets(stack):
    objects = registered_objects(platform(stack))
    synced = {}
    for es in of_kind(objects, "ExternalSecret"):
        synced.setdefault(es["metadata"]["namespace"], set()).add(es["spec"]["target"]["name"])
    roles = {r["metadata"]["namespace"]: r for r in of_kind(objects, "Role")
             if r["metadata"]["name"].endswith("-secret-readers")}
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(objects, "RoleBinding")
                if b["metadata"]["name"].endswith("-secret-readers")}
    assert sorted(roles) == sorted(synced) == sorted(bindings)
    for namespace, names in synced.items():
        assert roles[namespace]["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                              "resourceNames": sorted(names), "verbs": ["get"]}]
        binding = bindings[namespace]
        assert binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        accounts = [s for s in binding["subjects"] if s["kind"] == "ServiceAccount"]
        assert len(accounts) == 1 and accounts[0]["namespace"] == namespace
        assert {s["kind"] for s in binding["subjects"]} <= {"ServiceAccount", "Group"}
        assert len(binding["subjects"]) <= 2


def _policies(objects, namespace):
    return {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")
            if p["metadata"]["namespace"] == namespace}


def test_app_namespaces_are_restricted_and_deny_by_default(stack):
    run = platform(stack)
    objects = registered_objects(run)
    for ns in of_kind(objects, "Namespace"):
        labels = ns["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels["pod-security.kubernetes.io/%s" % mode] == "restricted"
        deny = _policies(objects, ns["metadata"]["name"])["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    for sa in of_kind(objects, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def _sources(spec, port):
    return [peer for rule in spec.get("ingress", []) if {"protocol": "TCP", "port": port} in rule.get("ports", [])
            for peer in rule.get("from", [])]


def test_vault_accepts_8200_from_eso_and_apps_and_8201_from_peers_only(stack):
    run = platform(stack)
    objects = registered_objects(run)
    env = run.config["heracles-platform:environment"]
    workloads = vault_data.load_workloads(DATA_DIR, env)
    vault_ns = run.config["heracles-platform:vaultNamespace"]
    policies = _policies(objects, vault_ns)
    assert policies["default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    vault_pods = policies["vault-api"]["podSelector"]
    api = _sources(policies["vault-api"], 8200)
    namespaces = sorted(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                        for p in api if "namespaceSelector" in p)
    expected = sorted([workloads["eso"]["namespace"]] + [app["namespace"] for app in workloads["apps"]]
                      + (["monitoring"] if run.config["heracles-platform:monitoring"] == "true" else [])
                      + [workloads["rotation_job"]["namespace"]])
    assert namespaces == expected
    assert [p for p in api if "ipBlock" in p] == [
        {"ipBlock": {"cidr": c}} for c in harness.json.loads(run.config["heracles-platform:vaultClientCidrs"])]
    cluster_port = [rule for spec in policies.values() for rule in spec.get("ingress", [])
                    if {"protocol": "TCP", "port": 8201} in rule.get("ports", [])]
    assert cluster_port == [{"from": [{"podSelector": vault_pods}], "ports": [{"protocol": "TCP", "port": 8201}]}]
    eso = _policies(objects, workloads["eso"]["namespace"])
    eso_egress = eso["external-secrets"]["egress"]
    assert {"protocol": "TCP", "port": 8200} in eso_egress[0]["ports"]
    assert eso_egress[0]["to"][0]["podSelector"] == vault_pods
    assert all(rule["ports"] in ([{"protocol": "TCP", "port": 8200}], [{"protocol": "TCP", "port": 443}],
                                 [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}])
               for rule in eso_egress)


ALERTS = {"VaultSealed", "VaultLeaderless", "VaultNodeDown", "VaultAutopilotUnhealthy", "VaultCertificateExpiring",
          "VaultBackupMissed", "ExternalSecretSyncError", "ExternalSecretNotReady", "ExternalSecretStale"}


def test_alerts_follow_monitoring_and_cover_every_external_secret(stack):
    run = platform(stack)
    objects = registered_objects(run)
    rules = of_kind(objects, "PrometheusRule")
    if run.config["heracles-platform:monitoring"] != "true":
        assert rules == []  # no Prometheus Operator CRDs to apply it to
        return
    assert len(rules) == 1
    alerts = [rule for group in rules[0]["spec"]["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} == ALERTS
    stale = [a for a in alerts if a["alert"] == "ExternalSecretStale"]
    assert len(stale) == len(of_kind(objects, "ExternalSecret"))
    backup = "%s-backup-cronjob" % run.config["heracles-platform:clusterName"]
    cronjob = run.one("kubernetes:batch/v1:CronJob", backup).inputs["metadata"]["name"]
    assert any(cronjob in a["expr"] for a in alerts if a["alert"] == "VaultBackupMissed")


def test_bad_workload_data_stops_the_program_before_it_registers_anything(tmp_path):
    import shutil  # pylint: disable=import-outside-toplevel

    data = tmp_path / "vault"
    shutil.copytree(DATA_DIR, str(data))
    env_file = data / "environments" / "dev.yml"
    env_file.write_text(env_file.read_text().replace("refresh_interval: 1h", "refresh_interval: 1d", 1))
    with pytest.raises(vault_data.VaultDataError, match="does not parse as a Go duration"):
        harness.run_program("platform", "dev", overrides={"vaultDataDir": str(data)})
    with pytest.raises(SystemExit, match="app payments"):
        manifests_main_with(str(data), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def manifests_main_with(data_dir, out):
    """``make manifests`` on another data directory (the stack's vaultDataDir overridden)."""
    import dataclasses  # pylint: disable=import-outside-toplevel

    original = manifests.settings_from_files

    def patched(cls, project_dir, stack):
        settings, values = original(cls, project_dir, stack)
        return dataclasses.replace(settings, vault_data_dir=data_dir), values
    manifests.settings_from_files = patched
    try:
        manifests.main(["--env", "dev", "--out", out])
    finally:
        manifests.settings_from_files = original


def test_no_role_in_an_app_namespace_grants_reading_secrets_to_anyone_but_the_app_and_operators(stack):
    """Every Role: Secrets only for the app's readers; the rotation job gets get/patch on named objects only."""
    run = platform(stack)
    objects = registered_objects(run)
    workloads = vault_data.load_workloads(DATA_DIR, run.config["heracles-platform:environment"])
    job = workloads["rotation_job"]
    for role in of_kind(objects, "Role"):
        for rule in role["rules"]:
            assert rule.get("resourceNames"), (role["metadata"], rule)  # never every object of a kind
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            if "secrets" in rule["resources"]:
                assert role["metadata"]["name"].endswith("-secret-readers") and rule["verbs"] == ["get"]
    rotator = [b for b in of_kind(objects, "RoleBinding")
               if b["subjects"][0]["name"] == job["service_account"]]
    assert sorted(b["metadata"]["namespace"] for b in rotator) == sorted(a["namespace"] for a in workloads["apps"])
    for binding in rotator:
        app = [a for a in workloads["apps"] if a["namespace"] == binding["metadata"]["namespace"]][0]
        role = [r for r in of_kind(objects, "Role") if r["metadata"]["namespace"] == app["namespace"]
                and r["metadata"]["name"] == binding["roleRef"]["name"]][0]
        granted = {(rule["resources"][0], name) for rule in role["rules"] for name in rule["resourceNames"]}
        plural = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
        declared = {("externalsecrets", s["name"]) for s in app["secrets"]} | {
            (plural[c["kind"]], c["name"]) for s in app["secrets"] for c in s["consumers"]}
        assert granted == declared
        assert all(rule["verbs"] == ["get", "patch"] for rule in role["rules"])


def test_the_rotation_job_runs_rotate_yml_as_its_own_vault_role_with_pinned_image(stack):
    import yaml  # pylint: disable=import-outside-toplevel

    run = platform(stack)
    objects = registered_objects(run)
    env = run.config["heracles-platform:environment"]
    workloads = vault_data.load_workloads(DATA_DIR, env)
    roles, desired = declared_roles(env)
    job = workloads["rotation_job"]
    [cronjob] = of_kind(objects, "CronJob")
    assert cronjob["metadata"]["namespace"] == job["namespace"] and cronjob["spec"]["schedule"] == job["schedule"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "@sha256:" in container["image"] and container["image"] == run.config["heracles-platform:operationsImage"]
    assert container["command"][-1] == "heracles.secrets.rotate"
    extra = yaml.safe_load([c for c in of_kind(objects, "ConfigMap") if c["metadata"]["namespace"] == job["namespace"]
                            and "vars.yml" in c["data"]][0]["data"]["vars.yml"])
    assert "-e" in container["command"] and extra["rotate_consumers"] is True and extra["rotate_encryption_key"] is False
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == job["service_account"]
    [inventory] = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["namespace"] == job["namespace"]
                   and "inventory.yml" in c["data"]]
    connection = yaml.safe_load(inventory["data"]["inventory.yml"])["all"]["vars"]["heracles_vault_connection"]
    role = roles[connection["role"]]
    assert role["bound_service_account_namespaces"] == [job["namespace"]]
    assert role["bound_service_account_names"] == [job["service_account"]]
    assert role["token_no_default_policy"] is True and len(role["policies"]) == 1
    policy = desired["policies"][role["policies"][0]]
    caps = {line.split('"')[1]: line for line in policy.splitlines() if line.startswith("path ")}
    # the apps' KV fields, and the database engine's root rotation (rotate-root and its stamp in the connection's
    # config); no creds, roles or leases
    database = (vault_data.load_databases(DATA_DIR, env) or {}).get("mount")
    assert all("/apps/" in path or path in ("%s/rotate-root/*" % database, "%s/config" % database, "%s/config/*" % database)
               for path in caps)
    assert "sys" not in policy.replace("# ", "").split("path")[1:]
    assert '"delete"' not in policy and '"sudo"' not in policy
    volumes = {v["name"]: v for v in pod["volumes"]}
    audience = volumes["vault-token"]["projected"]["sources"][0]["serviceAccountToken"]["audience"]
    assert audience == role["audience"] and connection["auth_mount_point"] == desired["auth"][0]["path"]
