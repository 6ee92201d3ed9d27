"""Render what pulumi/platform deploys for one stack, so the kind scenario installs the same thing.

The values come from the pure functions the Pulumi components call (``heracles_pulumi.server_config.chart_values``,
``heracles_pulumi.eso.eso_chart_values``, ``vault_store_spec``, ``external_secret_spec``), fed from the stack's
``Pulumi.<stack>.yaml`` (defaults from ``Pulumi.yaml``) and the declared Vault data under ``vault/``, the way
``pulumi/platform/__main__.py`` feeds them. Written to ``--out-dir``:

    vault-values.json   the Vault/OpenBao Helm chart values
    eso-values.json     the External Secrets Operator chart values
    kind.json           names, chart coordinates, apps, and the ClusterSecretStore / ExternalSecret specs
    tls/                (with --tls) ca.crt, tls.crt, tls.key for the names cert-manager's Certificate carries

What kind cannot have, and only that, differs from ``pulumi up -s <stack>`` (KIND_DEVIATIONS, also in kind.json):
no AWS KMS, so the ``seal "awskms"`` block that ``render_seal`` adds is removed from the server config (Shamir
keys, unsealed by playbooks/bootstrap.yml); no IRSA role, so no role annotation; kind's default storage class
instead of the stack's; no Prometheus Operator, so no ServiceMonitor; a generated CA instead of cert-manager.
"""

import argparse
import datetime
import ipaddress
import json
import os
import sys

KIND_DEVIATIONS = (
    "seal: the awskms block is removed (no KMS in kind): Shamir keys, unsealed by bootstrap.yml",
    "service accounts: no IRSA role-arn annotation (no AWS)",
    "storage: kind's default storage class instead of vaultStorageClass",
    "monitoring: no ServiceMonitor (no Prometheus Operator in kind)",
    "TLS: a generated CA and certificate with the Certificate's DNS names instead of cert-manager",
)
PROJECT = "heracles-platform"
TLS_DAYS = 30


def read_yaml(path):
    import yaml  # pylint: disable=import-outside-toplevel

    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def stack_settings(repo, stack):
    """The stack's config as ``{camelKey: value}``: Pulumi.yaml defaults, then Pulumi.<stack>.yaml values."""
    project_dir = os.path.join(repo, "pulumi", "platform")
    schema = read_yaml(os.path.join(project_dir, "Pulumi.yaml")).get("config") or {}
    settings = {key: decl["default"] for key, decl in schema.items() if isinstance(decl, dict) and "default" in decl}
    values = read_yaml(os.path.join(project_dir, "Pulumi.%s.yaml" % stack)).get("config") or {}
    prefix = PROJECT + ":"
    for key, value in values.items():
        if key.startswith(prefix):
            settings[key[len(prefix):]] = value
    settings["awsRegion"] = values.get("aws:region", "")
    return settings


def import_pulumi_package(repo):
    """heracles_pulumi's pure functions (eso.py imports the Pulumi SDK: ``pip install -r requirements-dev.txt``)."""
    sys.path.insert(0, os.path.join(repo, "pulumi"))
    try:
        # pylint: disable=import-outside-toplevel,import-error
        from heracles_pulumi import eso, server_config, settings, vaultdata
    except ImportError as exc:
        raise SystemExit("cannot import pulumi/heracles_pulumi (%s): install the dev requirements "
                         "(pip install -r requirements-dev.txt) into the venv that runs molecule" % exc)
    return eso, server_config, settings, vaultdata


def first_line(text):
    return text.splitlines()[0]


def render(repo, stack, flavour="", chart_version="", image_tag=""):
    """``(vault_values, eso_values, facts)`` for ``stack``, with the kind deviations applied."""
    eso, server_config, settings_mod, vaultdata = import_pulumi_package(repo)
    cfg = stack_settings(repo, stack)
    env = cfg["environment"]
    flavour = flavour or cfg["vaultFlavour"]
    same_flavour = flavour == cfg["vaultFlavour"]
    # The stack's chart version and image tag belong to its flavour; another flavour takes the chart's defaults.
    chart_version = chart_version or (cfg["vaultChartVersion"] if same_flavour else "")
    image_tag = image_tag or (cfg["vaultImageTag"] if same_flavour else "")

    data_dir = vaultdata.data_dir(cfg.get("vaultDataDir", ""))
    desired = vaultdata.loader().load(data_dir, [env])
    eso_auth, eso_role = vaultdata.eso_vault_role(desired, env)
    kv_path = next(mount["path"] for mount in desired["mounts"] if mount["type"] == "kv")
    environment = vaultdata.loader().load_environment(data_dir, env)

    spec = server_config.ServerSpec(
        flavour=flavour, release=cfg["vaultReleaseName"], namespace=cfg["vaultNamespace"],
        cluster_name=cfg["clusterName"], kms_region=cfg["awsRegion"] or "kind", kms_key_id="kind-has-no-kms",
        raft_join=cfg["vaultRaftJoin"], log_level=cfg["vaultLogLevel"], metrics=False,
        audit_devices=tuple(server_config.AuditDevice(d["path"], d["type"], d["description"],
                                                      tuple(sorted(d["options"].items())))
                            for d in desired["audit"]))
    release = server_config.ReleaseSpec(
        image_tag=image_tag, service_account_annotations=(), data_storage_size=cfg["vaultDataStorageSize"],
        audit_storage_size=cfg["vaultAuditStorageSize"], storage_class=None, service_monitor=False)
    vault_values = server_config.chart_values(spec, release)
    raft = vault_values["server"]["ha"]["raft"]
    seal = server_config.render_seal(spec)
    if raft["config"].count(seal) != 1:
        raise SystemExit("the rendered server config has no single awskms seal block to remove; "
                         "heracles_pulumi.server_config changed: update kind_render.py")
    raft["config"] = raft["config"].replace(seal, "")
    if not image_tag:
        del vault_values["server"]["image"]["tag"]

    eso_values = eso.eso_chart_values(cfg["esoReplicas"], eso_role["bound_service_account_names"][0], "", False)
    eso_values["serviceAccount"]["annotations"] = {}
    eso_namespace = eso_role["bound_service_account_namespaces"][0]
    eso_service_account = eso_role["bound_service_account_names"][0]
    store = eso.VaultStoreSpec(
        name=cfg["esoVaultStoreName"], server=spec.active_address, kv_path=kv_path, auth_mount=eso_auth["path"],
        role=eso_role["name"], audiences=(eso_role["audience"],), ca_secret=spec.tls_secret,
        ca_namespace=spec.namespace)
    synced = [eso.SyncedSecret(*settings_mod.parse_synced_secret(entry)) for entry in cfg["esoSyncedSecrets"]]

    flavour_info = spec.flavour_info
    apps = [dict(name=app["name"], namespace=app["namespace"], service_account=app["service_account"])
            for app in environment["apps"]]
    facts = {
        "stack": stack,
        "environment": env,
        "deviations": list(KIND_DEVIATIONS),
        "kv_path": kv_path,
        "vault": {
            "flavour": flavour,
            "chart": flavour_info.chart,
            "chart_repo": flavour_info.chart_repo,
            "chart_version": chart_version,
            "image": "%s/%s:%s" % (flavour_info.image_registry, flavour_info.image_repository, image_tag or "(chart)"),
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
        "kubernetes_auth": {"mount": eso_auth["path"], "audience": eso_role["audience"]},
        "apps": apps,
        "eso": {
            "namespace": eso_namespace,
            "service_account": eso_service_account,
            "chart": eso.ESO_CHART,
            "chart_repo": eso.ESO_CHART_REPO,
            "chart_version": cfg["esoChartVersion"],
            "api_version": eso.ESO_API,
            "store_name": store.name,
            "store_spec": eso.vault_store_spec(store, eso_service_account, eso_namespace),
            "external_secrets": [dict(namespace=secret.namespace, name=secret.name, key=secret.key,
                                      spec=eso.external_secret_spec(secret, store.name, cfg["esoRefreshInterval"]))
                                 for secret in synced],
        },
    }
    return vault_values, eso_values, facts


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_tls(out_dir, dns_names):
    """A CA and a server certificate (EC P-256, serverAuth+clientAuth) for ``dns_names`` and 127.0.0.1; kept if present."""
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
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=TLS_DAYS))
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


def write_json(path, data):
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    write_private(path, text.encode())
    return True


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

    vault_values, eso_values, facts = render(args.repo, args.stack, args.flavour, args.chart_version, args.image_tag)
    os.makedirs(args.out_dir, mode=0o700, exist_ok=True)
    changed = [name for name, data in (("vault-values.json", vault_values), ("eso-values.json", eso_values),
                                       ("kind.json", facts))
               if write_json(os.path.join(args.out_dir, name), data)]
    if args.tls and make_tls(args.out_dir, facts["vault"]["dns_names"]):
        changed.append("tls/")
    print(json.dumps({"changed": bool(changed), "files": changed}))


if __name__ == "__main__":
    main()
