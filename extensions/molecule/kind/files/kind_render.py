"""Render what pulumi/platform deploys for one stack, so the kind scenario installs the same thing.

Settings come from ``Pulumi.yaml`` defaults and ``Pulumi.<stack>.yaml`` (``settings.settings_from_files``, as
``pulumi/manifests.py`` reads them); values and objects from the pure functions ``pulumi/platform/__main__.py``
calls: ``server_config.chart_values``, ``eso.eso_chart_values`` and ``stack.delivery_objects`` (apps from
``vault/environments/<env>.yml``). Written to ``--out-dir``:

    vault-values.json   the Vault/OpenBao Helm chart values
    eso-values.json     the External Secrets Operator chart values
    workloads.yaml      every workload-delivery object, one YAML document each, in apply order: app namespaces,
                        service accounts, ConfigMaps vault-ca, per-app SecretStores, ExternalSecrets, RBAC,
                        NetworkPolicies (apps', Vault's, ESO's)
    kind.json           names, chart coordinates, apps, ExternalSecrets and the probes verify.yml runs
    tls/                (with --tls) ca.crt, tls.crt, tls.key for the names cert-manager's Certificate carries

What kind cannot have, and only that, differs from ``pulumi up -s <stack>`` (KIND_DEVIATIONS, also in kind.json).
"""

import argparse
import dataclasses
import datetime
import ipaddress
import json
import os
import re
import sys

KIND_DEVIATIONS = (
    "seal: the awskms block is removed (no KMS in kind): Shamir keys, unsealed by bootstrap.yml",
    "service accounts: no IRSA role-arn annotation (no AWS)",
    "storage: kind's default storage class instead of vaultStorageClass",
    "monitoring: off (no Prometheus Operator in kind): no ServiceMonitor, no PrometheusRule, no NetworkPolicy peer "
    "for monitoringNamespace",
    "TLS: a generated CA and certificate with the Certificate's DNS names instead of cert-manager; that CA is "
    "vaultCaBundle, so each app namespace gets ConfigMap vault-ca with it",
    "ESO: no AWS ClusterSecretStores (Secrets Manager, Parameter Store: no AWS)",
    "database credentials: no VaultDynamicSecret generators nor the ExternalSecrets using them (no PostgreSQL in "
    "kind; the database engine is tested against a real PostgreSQL in tests/integration)",
    "rotation job: no CronJob running rotate.yml in the cluster (no operations image is built here: operationsImage "
    "empty); the scenario's playbooks rotate from the host",
    "NetworkPolicies: applied as rendered; kind >= v0.24 enforces them (kindnetd), older kind does not. converge.yml "
    "adds NetworkPolicy kind-nodes in Vault's and ESO's namespaces: ingress from the kind nodes' addresses (this "
    "host reaches Vault through NodePorts, masqueraded to a node address) and egress to the API server's endpoints "
    "(kind serves it on 6443 behind the kubernetes Service; Pulumi's policies allow 443, EKS's port)",
)
PROJECT_DIR = os.path.join("pulumi", "platform")
TLS_DAYS = 30
CROSS_APP_NAME = "molecule-cross-app"
_GO_DOT_KEY = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def import_pulumi_package(repo):
    """heracles_pulumi's modules (eso.py imports the Pulumi SDK: ``pip install -r requirements-dev.txt``)."""
    sys.path.insert(0, os.path.join(repo, "pulumi"))
    try:
        # pylint: disable=import-outside-toplevel,import-error
        from heracles_pulumi import delivery, eso, server_config, settings, stack
    except ImportError as exc:
        raise SystemExit("cannot import pulumi/heracles_pulumi (%s): install the dev requirements "
                         "(pip install -r requirements-dev.txt) into the venv that runs molecule" % exc)
    return dict(delivery=delivery, eso=eso, server_config=server_config, settings=settings, stack=stack)


def is_database_delivery(obj):
    """A VaultDynamicSecret generator or the ExternalSecret that uses one (kind has no database: deviation)."""
    if obj["kind"] == "VaultDynamicSecret":
        return True
    return obj["kind"] == "ExternalSecret" and any(
        "sourceRef" in item for item in obj.get("spec", {}).get("dataFrom") or [])


def first_line(text):
    return text.splitlines()[0]


@dataclasses.dataclass
class Plan:
    """The stack as kind runs it: settings (with the overrides), the apps of vault/, the Vault server spec."""

    mods: dict
    stack: str
    settings: object
    workloads: dict
    server: object


def plan(repo, stack, flavour="", chart_version="", image_tag=""):
    """Settings from the stack's files, with ``--flavour/--chart-version/--image-tag`` and monitoring off."""
    mods = import_pulumi_package(repo)
    settings, values = mods["settings"].settings_from_files(
        mods["settings"].PlatformSettings, os.path.join(repo, PROJECT_DIR), stack)
    # The stack's chart version and image tag belong to its flavour; another flavour takes the chart's defaults.
    same_flavour = not flavour or flavour == settings.vault_flavour
    settings = dataclasses.replace(
        settings, vault_flavour=flavour or settings.vault_flavour,
        vault_chart_version=chart_version or (settings.vault_chart_version if same_flavour else ""),
        vault_image_tag=image_tag or (settings.vault_image_tag if same_flavour else ""),
        monitoring=False, operations_image="")
    desired, workloads = mods["stack"].declared(settings)
    hostname = mods["stack"].deployment(settings)["vault"]["hostname"]  # on Pulumi's certificate too
    server = dataclasses.replace(mods["stack"].server_spec(settings, values.get("aws:region") or "kind", desired,
                                                           external_hostnames=[hostname]),
                                 kms_key_id="kind-has-no-kms")
    return Plan(mods, stack, settings, workloads, server)


def template_parts(text):
    """A Go template made of ``{{ .key }}`` actions only, as ``[{"text": ...} | {"key": ...}]``; else None."""
    parts, pos = [], 0
    for match in _GO_DOT_KEY.finditer(text):
        if match.start() > pos:
            parts.append({"text": text[pos:match.start()]})
        parts.append({"key": match.group(1)})
        pos = match.end()
    if pos < len(text):
        parts.append({"text": text[pos:]})
    if any("{{" in part.get("text", "") for part in parts):
        return None
    return parts


def external_secret_facts(obj, app):
    """What verify.yml needs of one ExternalSecret object: its keys, Vault references and template."""
    spec = obj["spec"]
    template = spec["target"].get("template") or {}
    data = [dict(key=item["secretKey"], remote_key=item["remoteRef"]["key"], property=item["remoteRef"]["property"])
            for item in spec.get("data") or []]
    extract = [item["extract"]["key"] for item in spec.get("dataFrom") or []]
    return dict(
        namespace=obj["metadata"]["namespace"], name=obj["metadata"]["name"], app=app["name"],
        target=spec["target"]["name"], type=template.get("type", "Opaque"), data=data, extract=extract,
        remote_keys=sorted(set(item["remote_key"] for item in data) | set(extract)),
        template={key: template_parts(text) for key, text in sorted((template.get("data") or {}).items())},
        merge=template.get("mergePolicy") == "Merge")


def cross_app_probes(apps, external_secrets, store_name, api_version):
    """Per app, an ExternalSecret in its namespace that asks its own SecretStore for the next app's first key."""
    probes = []
    for index, app in enumerate(apps):
        other = apps[(index + 1) % len(apps)]
        theirs = [ref for es in external_secrets if es["app"] == other["name"] for ref in es["data"]]
        if other is app or not theirs:
            continue
        ref = theirs[0]
        probes.append(dict(app=app["name"], owner=other["name"], namespace=app["namespace"], name=CROSS_APP_NAME,
                           remote_key=ref["remote_key"], manifest={
                               "apiVersion": api_version, "kind": "ExternalSecret",
                               "metadata": {"name": CROSS_APP_NAME, "namespace": app["namespace"],
                                            "labels": {"app.kubernetes.io/part-of": "heracles-molecule"}},
                               "spec": {"refreshInterval": "1m",
                                        "secretStoreRef": {"kind": "SecretStore", "name": store_name},
                                        "target": {"name": CROSS_APP_NAME, "creationPolicy": "Owner"},
                                        "data": [{"secretKey": "stolen", "remoteRef": {
                                            "key": ref["remote_key"], "property": ref["property"]}}]}}))
    return probes


def rbac_probes(apps):
    """``kubectl auth can-i get secret/<name>`` for every app's service account on every app's Secrets."""
    return [dict(subject="system:serviceaccount:%s:%s" % (who["namespace"], who["service_account"]),
                 namespace=owner["namespace"], secret=secret, allowed=who["name"] == owner["name"])
            for who in apps for owner in apps for secret in owner["secrets"]]


def render(kind, ca_bundle):
    """``(vault_values, eso_values, objects, facts)`` of the plan, with the kind deviations applied."""
    mods, settings, workloads, spec = kind.mods, kind.settings, kind.workloads, kind.server
    server_config, eso = mods["server_config"], mods["eso"]
    if not ca_bundle.strip():
        raise SystemExit("the app SecretStores trust ConfigMap vault-ca: the kind CA (tls/ca.crt, --tls) is needed")
    release = server_config.ReleaseSpec(
        image_tag=settings.vault_image_tag, service_account_annotations=(),
        data_storage_size=settings.vault_data_storage_size, audit_storage_size=settings.vault_audit_storage_size,
        storage_class=None, service_monitor=False)
    vault_values = server_config.chart_values(spec, release)
    raft = vault_values["server"]["ha"]["raft"]
    seal = server_config.render_seal(spec)
    if raft["config"].count(seal) != 1:
        raise SystemExit("the rendered server config has no single awskms seal block to remove; "
                         "heracles_pulumi.server_config changed: update kind_render.py")
    raft["config"] = raft["config"].replace(seal, "")
    if not settings.vault_image_tag:
        del vault_values["server"]["image"]["tag"]

    eso_namespace, eso_service_account = workloads["eso"]["namespace"], workloads["eso"]["service_account"]
    eso_values = eso.eso_chart_values(settings.eso_replicas, eso_service_account, "", settings.monitoring)
    eso_values["serviceAccount"]["annotations"] = {}

    objects = [obj for obj in mods["stack"].delivery_objects(
        dataclasses.replace(settings, vault_ca_bundle=ca_bundle), spec, workloads) if not is_database_delivery(obj)]
    apps = [dict(name=app["name"], namespace=app["namespace"], service_account=app["service_account"],
                 role=app["role"], secrets=[secret["name"] for secret in app["secrets"]],
                 # the readers' Role also names the database credential Secrets (not synced in kind: no database)
                 database_secrets=[role["secret"] for role in app.get("database") or []])
            for app in workloads["apps"]]
    app_of = {app["namespace"]: app for app in apps}
    external_secrets = [external_secret_facts(obj, app_of[obj["metadata"]["namespace"]])
                        for obj in objects if obj["kind"] == "ExternalSecret"]
    flavour_info = spec.flavour_info
    facts = {
        "stack": kind.stack,
        "environment": workloads["environment"],
        "deviations": list(KIND_DEVIATIONS),
        "kv_path": workloads["kv"],
        "vault": {
            "flavour": settings.vault_flavour,
            "chart": flavour_info.chart,
            "chart_repo": flavour_info.chart_repo,
            "chart_version": settings.vault_chart_version,
            "image": "%s/%s:%s" % (flavour_info.image_registry, flavour_info.image_repository,
                                   settings.vault_image_tag or "(chart)"),
            "release": spec.release,
            "namespace": spec.namespace,
            "replicas": spec.replicas,
            "pods": ["%s-%d" % (spec.release, index) for index in range(spec.replicas)],
            "labels": server_config.server_labels(spec),
            "tls_secret": spec.tls_secret,
            "dns_names": spec.certificate_dns_names(),
            "active_address": spec.active_address,
            # HashiCorp Vault: the configure role enables the file audit device through the API (the chart mounts
            # auditStorage there); OpenBao declares it in the server config, so the API path stays empty.
            "audit_file_path": "" if flavour_info.declares_audit else "%s/audit.log" % spec.audit_dir,
            "seal_removed": first_line(seal),
        },
        "kubernetes_auth": {"mount": workloads["auth_mount"], "audience": workloads["audience"]},
        "apps": apps,
        "eso": {
            "namespace": eso_namespace,
            "service_account": eso_service_account,
            "chart": eso.ESO_CHART,
            "chart_repo": eso.ESO_CHART_REPO,
            "chart_version": settings.eso_chart_version,
            "api_version": mods["delivery"].ESO_API,
            "store_name": workloads["store_name"],
            "external_secrets": external_secrets,
            "remote_keys": sorted(set(key for es in external_secrets for key in es["remote_keys"])),
            "cross_app": cross_app_probes(apps, external_secrets, workloads["store_name"], mods["delivery"].ESO_API),
        },
        "rbac": rbac_probes(apps),
        "objects": [mods["delivery"].object_id(obj) for obj in objects],
    }
    return vault_values, eso_values, objects, facts


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_tls(out_dir, dns_names):
    """A CA and a server certificate (EC P-256, serverAuth+clientAuth) for ``dns_names`` and 127.0.0.1 (kept)."""
    # pylint: disable=import-outside-toplevel
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    tls_dir = os.path.join(out_dir, "tls")
    paths = [os.path.join(tls_dir, name) for name in ("ca.crt", "tls.crt", "tls.key")]
    if all(os.path.exists(path) for path in paths):
        return False
    os.makedirs(tls_dir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heracles kind test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=TLS_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(name) for name in dns_names] + [x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=TLS_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    write_private(paths[2], key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    write_private(paths[1], cert.public_bytes(pem))
    write_private(paths[0], ca_cert.public_bytes(pem))
    return True


def write_if_changed(path, text):
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    write_private(path, text.encode())
    return True


def workloads_yaml(objects, stack):
    """The delivery objects as one YAML stream (``kubectl apply -f``), each document headed by its id."""
    import yaml  # pylint: disable=import-outside-toplevel

    class Dumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
        """Multi-line strings (the CA, Go templates) as literal blocks."""

    Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))
    head = ("# The workload-delivery objects of the %s stack, as pulumi/platform applies them (heracles_pulumi.stack."
            "delivery_objects),\n# with the kind deviations of kind.json; written by kind_render.py, do not edit.\n"
            % stack)
    return head + "".join("---\n# %s\n%s" % (object_id, yaml.dump(obj, Dumper=Dumper, sort_keys=False, width=120))
                          for object_id, obj in objects)


def main():
    parser = argparse.ArgumentParser(description=first_line(__doc__))
    parser.add_argument("--repo", required=True, help="the repository root (pulumi/, vault/)")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--flavour", default="", help="vault or openbao (default: the stack's)")
    parser.add_argument("--chart-version", default="", help="default: the stack's, for the stack's flavour")
    parser.add_argument("--image-tag", default="", help="default: the stack's, for the stack's flavour")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--tls", action="store_true", help="also create tls/ (kept when present)")
    args = parser.parse_args()

    kind = plan(args.repo, args.stack, args.flavour, args.chart_version, args.image_tag)
    os.makedirs(args.out_dir, mode=0o700, exist_ok=True)
    changed = []
    if args.tls and make_tls(args.out_dir, kind.server.certificate_dns_names()):
        changed.append("tls/")
    try:
        with open(os.path.join(args.out_dir, "tls", "ca.crt")) as handle:
            ca_bundle = handle.read()
    except OSError:
        ca_bundle = ""
    vault_values, eso_values, objects, facts = render(kind, ca_bundle)
    ids = facts["objects"]
    changed += [name for name, text in (
        ("vault-values.json", json.dumps(vault_values, indent=2, sort_keys=True) + "\n"),
        ("eso-values.json", json.dumps(eso_values, indent=2, sort_keys=True) + "\n"),
        ("workloads.yaml", workloads_yaml(list(zip(ids, objects)), args.stack)),
        ("kind.json", json.dumps(facts, indent=2, sort_keys=True) + "\n"))
        if write_if_changed(os.path.join(args.out_dir, name), text)]
    print(json.dumps({"changed": bool(changed), "files": changed}))


if __name__ == "__main__":
    main()
