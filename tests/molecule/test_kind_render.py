"""Dry check of the kind scenario where Docker is missing: render it, validate the manifests, compare with Pulumi.

extensions/molecule/kind/render.yml runs here exactly as create.yml runs it (files/kind_render.py, then the
scenario's templates), into a temporary state directory. The manifests are then checked for the fields the API
server and ESO require, against each other (store -> Vault address, CA secret, auth role; ExternalSecret -> store,
namespace, seeded key), and against what pulumi/platform registers for the dev stack under mocks: the Vault and ESO
chart values, the ClusterSecretStore and the ExternalSecrets must be the same, except the documented kind deviations.
"""

import base64
import copy
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
for extra in (os.path.join(ROOT, "tests", "pulumi"), os.path.join(ROOT, "pulumi")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

ESO_API = "external-secrets.io/v1"
# (apiVersion, kind) -> (namespaced, required dotted paths)
REQUIRED = {
    ("v1", "Namespace"): (False, ["metadata.name"]),
    ("v1", "ServiceAccount"): (True, ["metadata.name"]),
    ("v1", "Secret"): (True, ["metadata.name", "type", "data.ca.crt", "data.tls.crt", "data.tls.key"]),
    ("v1", "Service"): (True, ["metadata.name", "spec.type", "spec.selector", "spec.ports"]),
    (ESO_API, "ClusterSecretStore"): (False, [
        "metadata.name", "spec.provider.vault.server", "spec.provider.vault.path", "spec.provider.vault.version",
        "spec.provider.vault.caProvider.type", "spec.provider.vault.caProvider.name",
        "spec.provider.vault.caProvider.namespace", "spec.provider.vault.caProvider.key",
        "spec.provider.vault.auth.kubernetes.mountPath", "spec.provider.vault.auth.kubernetes.role",
        "spec.provider.vault.auth.kubernetes.serviceAccountRef.name",
        "spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace",
        "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences"]),
    (ESO_API, "ExternalSecret"): (True, [
        "metadata.name", "spec.refreshInterval", "spec.secretStoreRef.name", "spec.secretStoreRef.kind",
        "spec.target.name", "spec.dataFrom"]),
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


def test_cluster_secret_store_reaches_vault_with_the_eso_role(manifests, facts):
    from heracles_pulumi import vaultdata

    [store] = of_kind(manifests, "ClusterSecretStore")
    vault = store["spec"]["provider"]["vault"]
    assert vault["server"] == facts["vault"]["active_address"]
    assert vault["server"].startswith("https://")
    assert vault["version"] == "v2" and vault["path"] == facts["kv_path"]
    # The CA comes from the TLS secret the Vault pods serve with.
    ca = vault["caProvider"]
    [tls] = of_kind(manifests, "Secret")
    assert (ca["type"], ca["name"], ca["namespace"]) == ("Secret", tls["metadata"]["name"], tls["metadata"]["namespace"])
    assert ca["key"] in tls["data"]
    # The Kubernetes auth role exists in vault/ and binds exactly this service account and audience.
    desired = vaultdata.loader().load(os.path.join(ROOT, "vault"), [facts["environment"]])
    auth = vault["auth"]["kubernetes"]
    [mount] = [a for a in desired["auth"] if a["path"] == auth["mountPath"]]
    [role] = [r for r in mount["roles"] if r["name"] == auth["role"]]
    assert role["bound_service_account_names"] == [auth["serviceAccountRef"]["name"]]
    assert role["bound_service_account_namespaces"] == [auth["serviceAccountRef"]["namespace"]]
    assert role["audience"] in auth["serviceAccountRef"]["audiences"]


def test_external_secrets_point_at_the_store_and_at_seeded_keys(manifests, facts):
    [store] = of_kind(manifests, "ClusterSecretStore")
    namespaces = {doc["metadata"]["name"] for doc in of_kind(manifests, "Namespace")}
    with open(os.path.join(ROOT, "vault", "seed", facts["environment"] + ".yml")) as handle:
        seed = yaml.safe_load(handle)
    seeded = set(seed.get("secrets") or {}) | set(seed.get("generate") or {})
    external = of_kind(manifests, "ExternalSecret")
    assert external
    for doc in external:
        spec = doc["spec"]
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": store["metadata"]["name"]}
        assert doc["metadata"]["namespace"] in namespaces
        assert DNS_1123.match(spec["target"]["name"])
        for item in spec["dataFrom"]:
            assert item["extract"]["key"] in seeded, item


def test_every_app_has_a_service_account_and_a_vault_role(manifests, facts):
    from heracles_pulumi import vaultdata

    desired = vaultdata.loader().load(os.path.join(ROOT, "vault"), [facts["environment"]])
    [mount] = [a for a in desired["auth"] if a["path"] == facts["kubernetes_auth"]["mount"]]
    accounts = {(doc["metadata"]["namespace"], doc["metadata"]["name"]) for doc in of_kind(manifests, "ServiceAccount")}
    for app in facts["apps"]:
        assert (app["namespace"], app["service_account"]) in accounts
        [role] = [r for r in mount["roles"] if r["name"] == app["name"]]
        assert role["bound_service_account_names"] == [app["service_account"]]
        assert role["bound_service_account_namespaces"] == [app["namespace"]]


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
    assert sorted(s["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] for s in services) == facts["vault"]["pods"]
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
    crs = [harness.unwrap(res.inputs) for res in run.resources if res.type.startswith("kubernetes:external-secrets.io/")]
    certificates = [harness.unwrap(res.inputs) for res in run.resources if res.type.endswith(":Certificate")]
    return releases, crs, certificates


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
    assert load(rendered[0], "eso-values.json") == expected


def test_store_and_external_secrets_are_pulumis(manifests, pulumi_dev):
    crs = pulumi_dev[1]
    ours = [doc for doc in manifests if doc["apiVersion"] == ESO_API]
    for doc in ours:
        [theirs] = [cr for cr in crs if cr["kind"] == doc["kind"] and cr["metadata"] == doc["metadata"]]
        assert theirs["spec"] == doc["spec"], doc["metadata"]
    # Every ExternalSecret Pulumi declares is synced in kind (the AWS stores need AWS and are left out).
    assert len(of_kind(ours, "ExternalSecret")) == len([cr for cr in crs if cr["kind"] == "ExternalSecret"])


def test_tls_certificate_covers_the_cert_manager_certificate(manifests, pulumi_dev):
    from cryptography import x509

    [certificate] = pulumi_dev[2]
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
