"""A fresh cluster gets what Vault and ESO need first: cert-manager and Vault's CA issuer, the CA in the app
namespaces, encrypted gp3 storage, and a preview-time check for the Prometheus CRDs when monitoring is on.

Checked on what the program registers, and the custom resources against the upstream CRD schemas.
"""

import pytest

import harness
import k8s_spec
from harness import unwrap
from runs import platform

CR = "kubernetes:cert-manager.io/v1:"


def cfg(run, key):
    value = run.config["heracles-platform:" + key]
    return harness.json.loads(value) if value[:1] in "[{" or value in ("true", "false") else value


def ints(value):
    """Numbers as the API server reads them: the engine's wire format (protobuf Struct) carries every number as a
    double, so 256 arrives as 256.0; the provider sends JSON integers for whole values."""
    if isinstance(value, dict):
        return {key: ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [ints(item) for item in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def objects(run, prefix):
    return [ints(unwrap(res.inputs)) for res in run.resources
            if res.custom and res.name.startswith(prefix) and not res.import_id and "kind" in res.inputs]


def test_cert_manager_bootstraps_the_ca_issuer_that_signs_vaults_certificate(stack):
    run = platform(stack)
    name = cfg(run, "clusterName")
    release = [unwrap(r.inputs) for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "cert-manager"]
    assert len(release) == 1 and release[0]["version"] == cfg(run, "certManagerChartVersion")
    assert release[0]["values"]["crds"]["enabled"] is True
    issuers = {o["metadata"]["name"]: o for o in objects(run, "%s-prerequisites-" % name) if o["kind"] == "ClusterIssuer"}
    ca_cert = [o for o in objects(run, "%s-prerequisites-" % name) if o["kind"] == "Certificate"]
    assert len(ca_cert) == 1 and ca_cert[0]["spec"]["isCA"] is True
    # bootstrap chain: self-signed issuer -> CA certificate -> CA issuer named vaultTlsIssuer
    bootstrap = issuers[ca_cert[0]["spec"]["issuerRef"]["name"]]
    assert bootstrap["spec"] == {"selfSigned": {}}
    ca_issuer = issuers[cfg(run, "vaultTlsIssuer")]
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert[0]["spec"]["secretName"]
    vault_cert = unwrap(run.one(CR + "Certificate", "%s-vault-tls" % name).inputs)
    assert vault_cert["spec"]["issuerRef"] == {"name": cfg(run, "vaultTlsIssuer"), "kind": "ClusterIssuer",
                                               "group": "cert-manager.io"}
    # the internal endpoint's name is on Vault's certificate
    assert harness.json.loads(harness.json.dumps(run.outputs["vaultEndpoint"])).split("//")[1].split(":")[0] in \
        vault_cert["spec"]["dnsNames"]
    for obj in [bootstrap, ca_issuer, ca_cert[0]]:
        assert k8s_spec.validate(obj) == [], obj["metadata"]["name"]


def test_trust_manager_puts_the_ca_where_every_app_store_looks_for_it(stack):
    run = platform(stack)
    name = cfg(run, "clusterName")
    bundles = [o for o in objects(run, "%s-prerequisites-" % name) if o["kind"] == "Bundle"]
    assert len(bundles) == 1 and k8s_spec.validate(bundles[0]) == []
    bundle = bundles[0]["spec"]
    ca_cert = [o for o in objects(run, "%s-prerequisites-" % name) if o["kind"] == "Certificate"][0]
    assert bundle["sources"] == [{"secret": {"name": ca_cert["spec"]["secretName"], "key": "ca.crt"}}]
    delivery = objects(run, "%s-delivery-" % name)
    selector = bundle["target"]["namespaceSelector"]["matchLabels"]
    namespaces = [o for o in delivery if o["kind"] == "Namespace"]
    assert namespaces and all(selector.items() <= o["metadata"]["labels"].items() for o in namespaces)
    for store in (o for o in delivery if o["kind"] == "SecretStore"):
        ca = store["spec"]["provider"]["vault"]["caProvider"]
        assert ca == {"type": "ConfigMap", "name": bundles[0]["metadata"]["name"], "key": bundle["target"]["configMap"]["key"]}
    assert not [o for o in delivery if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "vault-ca"]  # trust-manager


def test_vault_volumes_use_an_encrypted_gp3_class_the_stack_creates(stack):
    run = platform(stack)
    classes = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert len(classes) == 1
    sc = unwrap(classes[0].inputs)
    assert sc["metadata"]["name"] == cfg(run, "vaultStorageClass")
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"]["type"] == "gp3"
    assert sc["parameters"]["encrypted"] == "true" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert k8s_spec.validate(sc) == []
    server = [unwrap(r.inputs) for r in run.of_type("kubernetes:helm.sh/v3:Release")
              if r.inputs["chart"] == cfg(run, "vaultFlavour")][0]["values"]["server"]
    assert server["dataStorage"]["storageClass"] == server["auditStorage"]["storageClass"] == sc["metadata"]["name"]
    assert platform(stack, "self-managed").of_type("kubernetes:storage.k8s.io/v1:StorageClass") == []


def test_monitoring_checks_the_prometheus_crds_at_preview(stack):
    run = platform(stack)
    reads = [r for r in run.resources if r.import_id == "prometheusrules.monitoring.coreos.com"]
    if cfg(run, "monitoring"):
        assert len(reads) == 1 and reads[0].type == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    else:
        assert reads == []


def test_an_existing_issuer_is_read_not_created_and_needs_its_ca():
    with pytest.raises(ValueError, match=r"pulumi config set vaultCaBundle"):
        harness.run_program("platform", "prod", overrides={"vaultTlsIssuerMode": "existing"})
    run = harness.run_program("platform", "prod", overrides={"vaultTlsIssuerMode": "existing",
                                                             "vaultCaBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n"})
    reads = [r for r in run.resources if r.import_id == "heracles-prod-ca"]
    assert len(reads) == 1 and reads[0].type == CR + "ClusterIssuer"
    assert [r for r in run.of_type(CR + "ClusterIssuer") if not r.import_id] == []
    assert run.of_type("kubernetes:trust.cert-manager.io/v1alpha1:Bundle") == []
    configmaps = [unwrap(r.inputs) for r in run.of_type("kubernetes:core/v1:ConfigMap")
                  if r.inputs["metadata"]["name"] == "vault-ca"]
    assert configmaps and all(c["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----") for c in configmaps)


def test_the_internal_endpoint_is_an_internal_nlb_to_the_active_node_with_a_private_record(stack):
    run = platform(stack)
    name = cfg(run, "clusterName")
    facts = harness_facts(stack)
    service = unwrap(run.one("kubernetes:core/v1:Service", "%s-endpoint-service" % name).inputs)
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert "preserve_client_ip.enabled=true" in annotations[
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["selector"]["vault-active"] == "true"
    assert service["spec"]["loadBalancerSourceRanges"] == cfg(run, "vaultClientCidrs")
    assert k8s_spec.validate(ints(service)) == []
    record = unwrap(run.one("aws:route53/record:Record", "%s-endpoint-record" % name).inputs)
    assert record["zoneId"] == cfg(run, "privateZoneId") and record["name"] == facts["vault"]["hostname"]
    assert record["type"] == "CNAME" and record["records"] == ["internal-%s-endpoint-service.elb.example" % name]
    assert run.outputs["vaultEndpoint"] == facts["vault"]["address"]
    # Vault's API policy admits the clients the load balancer keeps the address of (and its health checks)
    api = [p for p in objects(run, "%s-delivery-" % name)
           if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "vault-api"][0]
    blocks = [peer["ipBlock"]["cidr"] for rule in api["spec"]["ingress"] for peer in rule["from"] if "ipBlock" in peer]
    assert blocks == cfg(run, "vaultClientCidrs") and blocks


def harness_facts(stack):
    from ansible_collections.heracles.secrets.plugins.module_utils import vault_data  # pylint: disable=import-outside-toplevel

    return vault_data.load_deployment(harness.os.path.join(harness.REPO_ROOT, "vault"), stack)


def test_kubernetes_waits_for_nodes_and_addons_and_vault_for_its_prerequisites(stack):
    """What the engine orders on (the registrations' dependencies): the Kubernetes provider after the node group and
    every managed add-on, so no release starts on a cluster without nodes; Vault's release after cert-manager, its
    CA issuer and the StorageClass its volumes ask for."""
    run = platform(stack)
    name = cfg(run, "clusterName")
    provider = run.one("pulumi:providers:kubernetes", "%s-k8s" % name)
    waited = " ".join(provider.dependencies)
    assert "%s-nodes" % name in waited or "NodeGroup" in waited, provider.dependencies
    for addon in run.of_type("aws:eks/addon:Addon"):
        assert addon.name in waited, addon.name
    vault_cert = run.one(CR + "Certificate", "%s-vault-tls" % name)
    cert_waits = " ".join(vault_cert.dependencies)
    release = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "%s-vault-release" % name][0]
    for needed in ("%s-prerequisites-cert-manager" % name,
                   "%s-prerequisites-clusterissuer-%s" % (name, cfg(run, "vaultTlsIssuer")),
                   "%s-prerequisites-storageclass-%s" % (name, cfg(run, "vaultStorageClass"))):
        assert needed in cert_waits, (needed, vault_cert.dependencies)
        assert needed in " ".join(release.dependencies), (needed, release.dependencies)
