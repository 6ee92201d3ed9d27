"""Dry check of the kind scenario where Docker is missing: render it, validate the manifests, compare with Pulumi.

extensions/molecule/kind/render.yml runs here exactly as create.yml runs it (files/kind_render.py, then the
scenario's templates), into a temporary state directory. The manifests are then checked for the fields the API
server and ESO require, against each other (SecretStore -> Vault address, CA ConfigMap, the app's role; ExternalSecret
-> its namespace's store, the app's own seeded keys), and against pulumi/platform: the chart values registered under
mocks, and every workload-delivery object ``make manifests`` writes (pulumi/manifests.py), the same as kind's except
the documented kind deviations. The facts verify.yml acts on (cross-app probes, RBAC probes) and the kind-only
NetworkPolicy converge.yml adds (files/kind_node_access.py) are checked too.
"""

import base64
import copy
import importlib
import ipaddress
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from heracles_playbook import ANSIBLE_PLAYBOOK
from heracles_testlib import ROOT, env

KIND_DIR = os.path.join(ROOT, "extensions", "molecule", "kind")
for extra in (os.path.join(ROOT, "tests", "pulumi"), os.path.join(ROOT, "pulumi"), os.path.join(KIND_DIR, "files")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

ESO_API = "external-secrets.io/v1"
RBAC_API = "rbac.authorization.k8s.io/v1"
NETPOL_API = "networking.k8s.io/v1"
# (apiVersion, kind) -> (namespaced, required dotted paths)
REQUIRED = {
    ("v1", "Namespace"): (False, ["metadata.name"]),
    ("v1", "ServiceAccount"): (True, ["metadata.name"]),
    ("v1", "ConfigMap"): (True, ["metadata.name", "data.ca.crt"]),
    ("v1", "Secret"): (True, ["metadata.name", "type", "data.ca.crt", "data.tls.crt", "data.tls.key"]),
    ("v1", "Service"): (True, ["metadata.name", "spec.type", "spec.selector", "spec.ports"]),
    (ESO_API, "SecretStore"): (True, [
        "metadata.name", "spec.provider.vault.server", "spec.provider.vault.path", "spec.provider.vault.version",
        "spec.provider.vault.caProvider.type", "spec.provider.vault.caProvider.name",
        "spec.provider.vault.caProvider.key",
        "spec.provider.vault.auth.kubernetes.mountPath", "spec.provider.vault.auth.kubernetes.role",
        "spec.provider.vault.auth.kubernetes.serviceAccountRef.name",
        "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences"]),
    (ESO_API, "ExternalSecret"): (True, [
        "metadata.name", "spec.refreshInterval", "spec.secretStoreRef.name", "spec.secretStoreRef.kind",
        "spec.target.name"]),
    (RBAC_API, "Role"): (True, ["metadata.name", "rules"]),
    (RBAC_API, "RoleBinding"): (True, ["metadata.name", "subjects", "roleRef.name"]),
    (NETPOL_API, "NetworkPolicy"): (True, ["metadata.name", "spec.podSelector", "spec.policyTypes"]),
}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dig(doc, dotted):
    """``doc['a']['b.c']``-style lookup that also accepts keys containing dots (``data.ca.crt``)."""
    node, parts = doc, dotted.split(".")
    while parts:
        for size in range(len(parts), 0, -1):
            key = ".".join(parts[:size])
            if isinstance(node, dict) and key in node:
                node, parts = node[key], parts[size:]
                break
        else:
            raise KeyError(dotted)
    return node


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Run render.yml once into a temporary Molecule ephemeral directory; return (render dir, stdout)."""
    ephemeral = tmp_path_factory.mktemp("kind-ephemeral")
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "inventories/dev", "-i", os.path.join(KIND_DIR, "inventory"),
         os.path.join(KIND_DIR, "render.yml")],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        env=env({"MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral), "ANSIBLE_NOCOLOR": "1"}))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return os.path.join(str(ephemeral), "heracles", "render"), proc.stdout


def load(render_dir, name):
    with open(os.path.join(render_dir, name)) as handle:
        if name.endswith(".json"):
            return json.load(handle)
        return [doc for doc in yaml.safe_load_all(handle) if doc]


@pytest.fixture(scope="module")
def facts(rendered):
    return load(rendered[0], "kind.json")


@pytest.fixture(scope="module")
def manifests(rendered):
    return load(rendered[0], "vault-access.yaml") + load(rendered[0], "workloads.yaml")


def of_kind(docs, kind):
    return [doc for doc in docs if doc["kind"] == kind]


def test_every_manifest_has_what_the_api_server_requires(manifests):
    assert manifests
    for doc in manifests:
        key = (doc.get("apiVersion"), doc.get("kind"))
        assert key in REQUIRED, "unexpected manifest %s" % (key,)
        namespaced, required = REQUIRED[key]
        for path in required:
            dig(doc, path)
        assert DNS_1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
        assert ("namespace" in doc["metadata"]) == namespaced, (key, doc["metadata"])


def test_rendered_files_are_private(rendered):
    render_dir = rendered[0]
    for base, dummy, files in os.walk(render_dir):
        for name in files:
            assert os.stat(os.path.join(base, name)).st_mode & 0o077 == 0, name


def in_namespace(docs, kind, namespace):
    return [doc for doc in of_kind(docs, kind) if doc["metadata"].get("namespace") == namespace]


def vault_roles(facts):
    from heracles_pulumi import vaultdata

    desired = vaultdata.loader().load(os.path.join(ROOT, "vault"), [facts["environment"]])
    [mount] = [a for a in desired["auth"] if a["path"] == facts["kubernetes_auth"]["mount"]]
    return {role["name"]: role for role in mount["roles"]}


def test_each_app_secret_store_logs_in_as_the_app_and_trusts_the_kind_ca(rendered, manifests, facts):
    roles = vault_roles(facts)
    [tls] = of_kind(manifests, "Secret")
    with open(os.path.join(rendered[0], "tls", "ca.crt")) as handle:
        kind_ca = handle.read()
    assert base64.b64decode(tls["data"]["ca.crt"]).decode().strip() == kind_ca.strip()  # the same CA everywhere
    stores = of_kind(manifests, "SecretStore")
    assert sorted(s["metadata"]["namespace"] for s in stores) == sorted(a["namespace"] for a in facts["apps"])
    assert not of_kind(manifests, "ClusterSecretStore")
    for app in facts["apps"]:
        [store] = in_namespace(manifests, "SecretStore", app["namespace"])
        assert store["metadata"]["name"] == facts["eso"]["store_name"]
        vault = store["spec"]["provider"]["vault"]
        assert vault["server"] == facts["vault"]["active_address"] and vault["server"].startswith("https://")
        assert vault["version"] == "v2" and vault["path"] == facts["kv_path"]
        # The CA: ConfigMap vault-ca in the app's own namespace, holding the CA that signed Vault's certificate.
        ca = vault["caProvider"]
        assert ca["type"] == "ConfigMap" and "namespace" not in ca
        [configmap] = in_namespace(manifests, "ConfigMap", app["namespace"])
        assert configmap["metadata"]["name"] == ca["name"] and configmap["data"][ca["key"]] == kind_ca
        # Kubernetes auth as the app: its service account, its role, which vault/ binds to exactly that account.
        auth = vault["auth"]["kubernetes"]
        assert auth["mountPath"] == facts["kubernetes_auth"]["mount"]
        assert auth["role"] == app["role"] and auth["serviceAccountRef"] == {
            "name": app["service_account"], "audiences": [facts["kubernetes_auth"]["audience"]]}
        role = roles[auth["role"]]
        assert role["bound_service_account_names"] == [app["service_account"]]
        assert role["bound_service_account_namespaces"] == [app["namespace"]]
        assert role["audience"] == facts["kubernetes_auth"]["audience"]


def test_external_secrets_use_their_namespace_store_and_their_app_own_seeded_keys(manifests, facts):
    from ansible_collections.heracles.secrets.plugins.module_utils import vault_data

    fields = vault_data.seed_fields(os.path.join(ROOT, "vault"), facts["environment"])
    app_of = {app["namespace"]: app for app in facts["apps"]}
    external = of_kind(manifests, "ExternalSecret")
    assert len(external) == len(facts["eso"]["external_secrets"]) == sum(len(a["secrets"]) for a in facts["apps"])
    for doc, fact in zip(external, facts["eso"]["external_secrets"]):
        namespace, spec = doc["metadata"]["namespace"], doc["spec"]
        app = app_of[namespace]
        assert (fact["namespace"], fact["name"], fact["app"], fact["target"]) == (
            namespace, doc["metadata"]["name"], app["name"], spec["target"]["name"])
        assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": facts["eso"]["store_name"]}
        assert in_namespace(manifests, "SecretStore", namespace)
        assert DNS_1123.match(spec["target"]["name"]) and spec["target"]["name"] in app["secrets"]
        remotes = [item["remoteRef"] for item in spec.get("data") or []]
        assert [(r["key"], r["property"]) for r in remotes] == [(d["remote_key"], d["property"]) for d in fact["data"]]
        for ref in remotes:
            assert ref["key"].startswith("apps/%s/" % app["name"]) and ref["property"] in fields[ref["key"]], ref
        for item in spec.get("dataFrom") or []:
            assert item["extract"]["key"].startswith("apps/%s/" % app["name"]) and item["extract"]["key"] in fields


def test_template_parts_render_like_the_go_templates(facts, manifests):
    """verify.yml renders {{ .key }}-only templates from these parts: they must give back the template text."""
    import kind_render

    for doc, fact in zip(of_kind(manifests, "ExternalSecret"), facts["eso"]["external_secrets"]):
        template = doc["spec"]["target"].get("template") or {}
        assert fact["merge"] == (template.get("mergePolicy") == "Merge")
        assert fact["type"] == template.get("type", "Opaque")
        assert sorted(fact["template"]) == sorted(template.get("data") or {})
        for key, parts in fact["template"].items():
            assert parts is not None, (fact["name"], key)  # the dev templates are all simple
            text = "".join(part["text"] if "text" in part else "{{ .%s }}" % part["key"] for part in parts)
            assert text == template["data"][key]
            assert {part["key"] for part in parts if "key" in part} <= {d["key"] for d in fact["data"]}
    assert kind_render.template_parts('{{ .a }}-{{.b}}') == [{"key": "a"}, {"text": "-"}, {"key": "b"}]
    assert kind_render.template_parts('{{ .a | upper }}') is None
    assert kind_render.template_parts('{{ index . "a-b" }}') is None
    assert kind_render.template_parts('a {{- .b }}') is None  # trims whitespace: not rendered by verify.yml


def test_every_app_has_a_service_account_rbac_on_its_secrets_and_a_vault_role(manifests, facts):
    roles = vault_roles(facts)
    accounts = {(doc["metadata"]["namespace"], doc["metadata"]["name"]) for doc in of_kind(manifests, "ServiceAccount")}
    for app in facts["apps"]:
        assert (app["namespace"], app["service_account"]) in accounts
        assert roles[app["role"]]["bound_service_account_names"] == [app["service_account"]]
        [role] = in_namespace(manifests, "Role", app["namespace"])
        [binding] = in_namespace(manifests, "RoleBinding", app["namespace"])
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                  "resourceNames": sorted(app["secrets"] + app["database_secrets"]), "verbs": ["get"]}]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        subject = "system:serviceaccount:%s:%s" % (app["namespace"], app["service_account"])
        assert {"kind": "ServiceAccount", "name": app["service_account"], "namespace": app["namespace"]} in \
            binding["subjects"]
        # verify.yml asks `kubectl auth can-i` for each app's account on every app's Secret: yes for its own only.
        probes = [p for p in facts["rbac"] if p["subject"] == subject]
        assert sorted((p["namespace"], p["secret"]) for p in probes) == sorted(
            (a["namespace"], s) for a in facts["apps"] for s in a["secrets"])
        assert all(p["allowed"] == (p["namespace"] == app["namespace"]) for p in probes)


def test_cross_app_probes_ask_an_app_own_store_for_another_app_key(facts):
    """verify.yml expects these to fail (Vault 403): the store logs in as the app, whose policy is apps/<app>/*."""
    probes = facts["eso"]["cross_app"]
    assert len(probes) == len(facts["apps"]) >= 2
    names = {app["name"]: app for app in facts["apps"]}
    owned = {ref["remote_key"] for es in facts["eso"]["external_secrets"] for ref in es["data"]}
    for probe in probes:
        app, manifest = names[probe["app"]], probe["manifest"]
        assert probe["owner"] != probe["app"] and probe["remote_key"].startswith("apps/%s/" % probe["owner"])
        assert probe["remote_key"] in owned
        assert manifest["metadata"]["namespace"] == app["namespace"] == probe["namespace"]
        assert manifest["metadata"]["name"] == probe["name"] == manifest["spec"]["target"]["name"]
        assert manifest["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": facts["eso"]["store_name"]}
        assert [d["remoteRef"]["key"] for d in manifest["spec"]["data"]] == [probe["remote_key"]]
        assert probe["name"] not in {s for a in facts["apps"] for s in a["secrets"]}
    # the brief's case: orders asks for payments' database secret
    assert any(p["app"] == "orders" and p["remote_key"] == "apps/payments/db" for p in probes)


def test_kind_node_access_admits_only_node_and_api_server_addresses(facts):
    """converge.yml's kind-only NetworkPolicy: node addresses in, the API server's endpoint out, no selectors."""
    import kind_node_access

    addresses = [[{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": "n"}]
                 for ip in ("172.18.0.4", "172.18.0.2", "fc00:f853:ccd:e793::2")]
    nodes = {"items": [{"status": {"addresses": pair}} for pair in addresses]}
    api = {"items": [{"ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
                      "endpoints": [{"addresses": ["172.18.0.2"]}]}]}
    out = kind_node_access.policies(facts, nodes, api)
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in out["items"]] == [
        (facts["vault"]["namespace"], "kind-nodes"), (facts["eso"]["namespace"], "kind-nodes")]
    for policy in out["items"]:
        spec = policy["spec"]
        assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["ingress"] == [{"from": [{"ipBlock": {"cidr": c}} for c in (
            "172.18.0.2/32", "172.18.0.4/32", "fc00:f853:ccd:e793::2/128")]}]
        assert spec["egress"] == [{"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
                                   "ports": [{"protocol": "TCP", "port": 6443}]}]
    with pytest.raises(SystemExit):
        kind_node_access.policies(facts, {"items": []}, api)


def test_vault_tls_secret_covers_every_name_in_use(rendered, manifests, facts):
    """Pods joining (leader_tls_servername), ESO (the active service) and this host (127.0.0.1) all verify it."""
    from cryptography import x509

    [tls] = of_kind(manifests, "Secret")
    assert tls["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["ca.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    config = load(rendered[0], "vault-values.json")["server"]["ha"]["raft"]["config"]
    join_names = set(re.findall(r'leader_tls_servername = "([^"]+)"', config))
    assert len(join_names) == facts["vault"]["replicas"]
    wanted = join_names | {facts["vault"]["active_address"].split("//")[1].split(":")[0]}
    assert wanted <= names, wanted - names


def test_nodeports_match_the_kind_config(rendered, manifests, facts):
    config = load(rendered[0], "kind-config.yaml")[0]
    [control] = [node for node in config["nodes"] if node["role"] == "control-plane"]
    workers = [node for node in config["nodes"] if node["role"] == "worker"]
    # The chart values require one Vault pod per host and spread over zones: one worker per zone.
    assert len(workers) == facts["vault"]["replicas"]
    assert len({node["labels"]["topology.kubernetes.io/zone"] for node in workers}) == len(workers)
    mapped = {m["containerPort"] for m in control["extraPortMappings"]}
    assert all(m["listenAddress"] == "127.0.0.1" for m in control["extraPortMappings"])
    services = of_kind(manifests, "Service")
    pods = sorted(s["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] for s in services)
    assert pods == facts["vault"]["pods"]
    for service in services:
        assert service["spec"]["type"] == "NodePort"
        assert service["spec"]["publishNotReadyAddresses"] is True  # sealed pods are not ready
        assert service["spec"]["ports"][0]["nodePort"] in mapped


def test_vault_values_have_no_kms_seal_and_keep_tls_and_raft(rendered, facts):
    values = load(rendered[0], "vault-values.json")
    config = values["server"]["ha"]["raft"]["config"]
    assert "seal" not in config and "awskms" not in config
    assert values["global"]["tlsDisable"] is False and "tls_disable        = false" in config
    assert values["server"]["ha"]["replicas"] == facts["vault"]["replicas"] == 3
    assert config.count("retry_join") == 3
    assert values["server"]["extraVolumes"] == [{"type": "secret", "name": facts["vault"]["tls_secret"]}]


# --- the same values as pulumi/platform ---------------------------------------------------------------------------
RELEASE = "kubernetes:helm.sh/v3:Release"
SEAL_BLOCK = re.compile(r'seal "awskms" \{\n(?:  .*\n)*\}\n')


@pytest.fixture(scope="module")
def pulumi_dev():
    """pulumi/platform's dev stack under mocks (tests/pulumi's harness): what `pulumi up -s dev` would register."""
    import harness
    import runs

    run = runs.platform("dev")
    releases = {res.inputs["chart"]: harness.unwrap(res.inputs) for res in run.of_type(RELEASE)}
    certificates = [harness.unwrap(res.inputs) for res in run.resources
                    if res.type.endswith(":Certificate") and res.name.endswith("-vault-tls")]
    crs = [harness.unwrap(res.inputs) for res in run.resources if res.type.startswith("kubernetes:external-secrets")]
    return releases, certificates, crs


def without_kind_deviations(vault_values):
    """Pulumi's Vault chart values with what kind cannot have taken out (kind_render.KIND_DEVIATIONS)."""
    values = copy.deepcopy(vault_values)
    raft = values["server"]["ha"]["raft"]
    assert len(SEAL_BLOCK.findall(raft["config"])) == 1
    raft["config"] = SEAL_BLOCK.sub("", raft["config"])
    values["server"]["serviceAccount"]["annotations"] = {}
    for volume in ("dataStorage", "auditStorage"):
        values["server"][volume].pop("storageClass", None)
    return values


def test_vault_chart_values_are_pulumis(rendered, facts, pulumi_dev):
    releases = pulumi_dev[0]
    pulumi_release = releases[facts["vault"]["chart"]]
    assert pulumi_release["version"] == facts["vault"]["chart_version"]
    assert pulumi_release["repositoryOpts"]["repo"] == facts["vault"]["chart_repo"]
    assert pulumi_release["namespace"] == facts["vault"]["namespace"]
    assert load(rendered[0], "vault-values.json") == without_kind_deviations(pulumi_release["values"])


def test_eso_chart_values_are_pulumis(rendered, facts, pulumi_dev):
    pulumi_release = pulumi_dev[0][facts["eso"]["chart"]]
    assert pulumi_release["version"] == facts["eso"]["chart_version"]
    assert pulumi_release["namespace"] == facts["eso"]["namespace"]
    expected = copy.deepcopy(pulumi_release["values"])
    expected["serviceAccount"]["annotations"] = {}
    values = load(rendered[0], "eso-values.json")
    assert values == expected
    # The app SecretStores need ESO's chart ClusterRole (serviceaccounts/token create, configmaps get): keep it.
    assert values.get("rbac", {}).get("create", True) is True


def kind_render_module():
    import kind_render  # pylint: disable=import-outside-toplevel

    return kind_render


def pulumi_without_kind_deviations(objects, settings):
    """Pulumi's delivery objects with what kind cannot have taken out (kind_render.KIND_DEVIATIONS).

    Monitoring is off in kind: no PrometheusRule, no NetworkPolicy peer for the monitoring namespace (and no rule
    left without peers). The vault-ca ConfigMaps are compared apart (their content is the kind CA).
    """
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.monitoring_namespace}}}
    rotation = settings and "heracles-ops"  # the rotation job's namespace (vault/environments: rotation.namespace)
    rotation_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": rotation}}}
    out = []
    for obj in copy.deepcopy(objects):
        if obj["kind"] == "PrometheusRule" or (obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "vault-ca"):
            continue
        if kind_render_module().is_database_delivery(obj):  # no database in kind
            continue
        # no rotation CronJob in kind: its namespace, objects, the RBAC it gets in app namespaces, Vault's peer for it
        if obj["metadata"].get("namespace") == rotation or obj["metadata"]["name"] == rotation or \
                obj["metadata"]["name"].startswith("heracles-rotate-"):
            continue
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "vault-api":
            for rule in obj["spec"]["ingress"]:
                rule["from"] = [peer for peer in rule["from"] if peer != rotation_peer]
        if obj["kind"] == "NetworkPolicy" and settings.monitoring:
            for direction, peers in (("ingress", "from"), ("egress", "to")):
                rules = obj["spec"].get(direction)
                if rules:
                    for rule in rules:
                        if peers in rule:
                            rule[peers] = [peer for peer in rule[peers] if peer != monitoring]
                    obj["spec"][direction] = [rule for rule in rules if rule.get(peers, True) != []]
        out.append(obj)
    return out


def test_workload_objects_are_pulumis(rendered, manifests, facts):
    """workloads.yaml is `make manifests ENV=dev` (what pulumi/platform applies) but for the documented deviations."""
    pulumi_manifests = importlib.import_module("manifests")  # pulumi/manifests.py
    from heracles_pulumi.settings import PlatformSettings, settings_from_files

    settings = settings_from_files(PlatformSettings, os.path.join(ROOT, "pulumi", "platform"), facts["stack"])[0]
    theirs = pulumi_manifests.render(facts["stack"])
    ours = load(rendered[0], "workloads.yaml")
    assert not of_kind(ours, "PrometheusRule")
    ca_maps = [doc for doc in ours if doc["kind"] == "ConfigMap"]
    assert sorted(doc["metadata"]["namespace"] for doc in ca_maps) == sorted(a["namespace"] for a in facts["apps"])
    # set when the stack has vaultCaBundle: all but the CA agree (the rotation job's inventory is not in kind)
    for theirs_map in [doc for doc in of_kind(theirs, "ConfigMap") if doc["metadata"]["name"] == "vault-ca"]:
        [ours_map] = [doc for doc in ca_maps if doc["metadata"] == theirs_map["metadata"]]
        assert set(ours_map["data"]) == set(theirs_map["data"])
    assert [doc for doc in ours if doc["kind"] != "ConfigMap"] == pulumi_without_kind_deviations(theirs, settings)
    # kind.json names every object it describes, in the same order
    from heracles_pulumi.delivery import object_id

    assert facts["objects"] == [object_id(doc) for doc in ours]


@pytest.mark.parametrize("stack", sorted(name[:-4] for name in os.listdir(os.path.join(ROOT, "vault", "environments"))
                                         if name.endswith(".yml")))
def test_kind_render_of_every_stack_is_pulumis_but_the_deviations(stack):
    """The same comparison for every stack, in process (staging and prod turn monitoring on: kind turns it off)."""
    import kind_render

    pulumi_manifests = importlib.import_module("manifests")
    from heracles_pulumi.settings import PlatformSettings, settings_from_files

    settings = settings_from_files(PlatformSettings, os.path.join(ROOT, "pulumi", "platform"), stack)[0]
    objects = kind_render.render(kind_render.plan(ROOT, stack), "-----BEGIN CERTIFICATE-----\nkind\n")[2]
    assert [obj for obj in objects if obj["kind"] != "ConfigMap"] == pulumi_without_kind_deviations(
        pulumi_manifests.render(stack), settings)


def test_every_deviation_is_in_the_renderer_list(facts):
    import kind_render

    assert facts["deviations"] == list(kind_render.KIND_DEVIATIONS)
    text = " ".join(facts["deviations"])
    for topic in ("awskms", "IRSA", "storage class", "PrometheusRule", "vault-ca", "AWS ClusterSecretStores",
                  "NetworkPolicies", "6443", "rotation job", "database credentials"):
        assert topic in text, topic


def test_only_pulumis_aws_stores_are_missing_in_kind(manifests, pulumi_dev):
    """Under mocks Pulumi registers kind's SecretStores and ExternalSecrets, plus the AWS stores kind cannot use."""
    ours = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in manifests
            if d["apiVersion"] == ESO_API}
    theirs = {(cr["kind"], cr["metadata"].get("namespace"), cr["metadata"]["name"]): cr for cr in pulumi_dev[2]}
    assert set(ours) <= set(theirs)
    assert all(theirs[key]["spec"] == doc["spec"] for key, doc in ours.items())
    missing = [theirs[key] for key in set(theirs) - set(ours)]
    assert missing and all((cr["kind"] == "ClusterSecretStore" and set(cr["spec"]["provider"]) == {"aws"})
                           or kind_render_module().is_database_delivery(cr) for cr in missing), missing


def test_tls_certificate_covers_the_cert_manager_certificate(manifests, pulumi_dev):
    from cryptography import x509

    [certificate] = pulumi_dev[1]
    [tls] = of_kind(manifests, "Secret")
    assert tls["metadata"]["name"] == certificate["spec"]["secretName"]
    sans = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"])).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert set(certificate["spec"]["dnsNames"]) <= set(sans.get_values_for_type(x509.DNSName))
    assert {ipaddress.ip_address(ip) for ip in certificate["spec"]["ipAddresses"]} <= set(
        sans.get_values_for_type(x509.IPAddress))


def test_render_reports_the_deviations(rendered, facts):
    stdout = rendered[1]
    assert facts["deviations"] and all(line in stdout for line in facts["deviations"])
