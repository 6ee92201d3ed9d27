"""The Vault/OpenBao server: its HCL and its Helm chart values, as pure functions.

``render_server_hcl`` is what the chart puts in ``server.ha.raft.config``; a test starts a real
``bao server`` with it (the awskms seal and the Kubernetes service registration swapped out), so a syntax
or option error fails the build here, not in the cluster. ``chart_values`` builds the whole values tree.

Facts that shape this (measured with OpenBao 2.7.2, see DESIGN.md):
- ``performance_multiplier`` and ``autopilot_reconcile_interval`` belong inside ``storage "raft"``.
- ``disable_mlock`` is an unknown option for OpenBao (mlock was removed): HashiCorp Vault only.
- OpenBao >= 2.4 refuses audit devices created through the API: the server config declares them.
- The chart copies the config and replaces HOST_IP, POD_IP, HOSTNAME, API_ADDR, TRANSIT_ADDR and RAFT_ADDR
  with sed; nothing rendered here may contain those words by accident.
"""

import json
from dataclasses import dataclass, field
from typing import Optional, Tuple

from heracles_pulumi.tls_reload import DEFAULT_INTERVAL_SECONDS, reload_container

CHART_PLACEHOLDERS = ("HOST_IP", "POD_IP", "HOSTNAME", "API_ADDR", "TRANSIT_ADDR", "RAFT_ADDR")
API_PORT = 8200
CLUSTER_PORT = 8201
RAFT_JOIN_MODES = ("k8s", "addresses")
# The PriorityClass of the platform's pods (Vault, ESO): below system-cluster-critical (2000000000), above workloads,
# so a full node evicts apps before the secrets path. Created by the Vault component (priority_class_manifest).
PRIORITY_CLASS = "heracles-critical"
PRIORITY_CLASS_VALUE = 1000000
# The charts' default server identity (hashicorp/vault and openbao: server.uid 100, server.gid 1000), set explicitly so
# the TLS-reload sidecar provably runs as the same user as the server process it signals.
SERVER_UID = 100
SERVER_GID = 1000
# Requests and limits of the server container (values of ReleaseSpec.resources; override per stack).
SERVER_RESOURCES = (("requests", (("cpu", "250m"), ("memory", "256Mi"))),
                    ("limits", (("cpu", "1"), ("memory", "1Gi"))))


@dataclass(frozen=True)
class Flavour:
    """What differs between HashiCorp Vault and OpenBao for the chart, the server and the CLI."""

    name: str
    chart: str
    chart_repo: str
    image_registry: str
    image_repository: str
    home: str
    cli: str
    env_prefix: str
    disable_mlock: bool
    declares_audit: bool


FLAVOURS = {
    "vault": Flavour(name="vault", chart="vault", chart_repo="https://helm.releases.hashicorp.com",
                     image_registry="docker.io", image_repository="hashicorp/vault", home="/vault", cli="vault",
                     env_prefix="VAULT_", disable_mlock=True, declares_audit=False),
    "openbao": Flavour(name="openbao", chart="openbao", chart_repo="https://openbao.github.io/openbao-helm",
                       image_registry="quay.io", image_repository="openbao/openbao", home="/openbao", cli="bao",
                       env_prefix="BAO_", disable_mlock=False, declares_audit=True),
}


def get_flavour(name):
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError("unknown Vault flavour %r: choose one of %s" % (name, ", ".join(sorted(FLAVOURS))))


@dataclass(frozen=True)
class AuditDevice:
    """A file audit device declared in the server config (OpenBao); options as in vault/common.yml."""

    path: str
    type: str
    description: str
    options: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class ServerSpec:
    """Everything the server HCL and the chart values depend on; no environment name is assumed."""

    flavour: str
    release: str
    namespace: str
    cluster_name: str
    kms_region: str
    kms_key_id: str = ""
    replicas: int = 3
    raft_join: str = "addresses"
    tls_secret: str = "vault-tls"
    tls_server_name: str = ""
    performance_multiplier: int = 1
    autopilot_reconcile_interval: str = "10s"
    log_level: str = "info"
    ui: bool = False
    metrics: bool = False
    audit_file_path: str = ""
    audit_devices: Tuple[AuditDevice, ...] = field(default_factory=tuple)
    # Names outside the cluster (the internal load balancer's DNS record operators and playbooks use).
    external_hostnames: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def flavour_info(self):
        return get_flavour(self.flavour)

    @property
    def tls_dir(self):
        return "%s/userconfig/%s" % (self.flavour_info.home, self.tls_secret)

    @property
    def data_dir(self):
        return "%s/data" % self.flavour_info.home

    @property
    def audit_dir(self):
        return "%s/audit" % self.flavour_info.home

    @property
    def headless_service(self):
        return "%s-internal" % self.release

    def pod_host(self, index):
        return "%s-%d.%s" % (self.release, index, self.headless_service)

    def service_host(self, suffix=""):
        return "%s%s.%s.svc" % (self.release, suffix, self.namespace)

    @property
    def join_server_name(self):
        """The name a node checks on the leader's certificate when joining through Kubernetes auto-join."""
        return self.tls_server_name or self.service_host()

    def certificate_dns_names(self):
        """Every name a client or a joining node may use: pods, headless, services (the certificate's SANs)."""
        names = [self.pod_host(i) for i in range(self.replicas)]
        names += [
            "*.%s" % self.headless_service,
            "*.%s.%s.svc" % (self.headless_service, self.namespace),
            "*.%s.%s.svc.cluster.local" % (self.headless_service, self.namespace),
            self.service_host(), self.service_host("-active"), self.service_host("-standby"),
            "%s.%s.svc.cluster.local" % (self.release, self.namespace),
            self.join_server_name,
        ]
        names += list(self.external_hostnames)
        seen = []
        for name in names:
            if name not in seen:
                seen.append(name)
        return seen

    @property
    def active_address(self):
        return "https://%s:%d" % (self.service_host("-active"), API_PORT)


def hcl_string(value):
    """A quoted HCL string; ``${`` and ``%{`` would start a template, so they are escaped."""
    return json.dumps(str(value)).replace("${", "$${").replace("%{", "%%{")


def _block(header, lines, indent=""):
    body = "".join("%s  %s\n" % (indent, line) if line else "\n" for line in lines)
    return "%s%s {\n%s%s}\n" % (indent, header, body, indent)


def _retry_join_blocks(spec):
    ca_file = "%s/ca.crt" % spec.tls_dir
    if spec.raft_join == "k8s":
        selector = "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,component=server" % (
            spec.flavour_info.chart, spec.release)
        auto_join = 'provider=k8s namespace="%s" label_selector="%s"' % (spec.namespace, selector)
        return [_block("retry_join", [
            "auto_join             = %s" % hcl_string(auto_join),
            "auto_join_scheme      = \"https\"",
            "auto_join_port        = %d" % API_PORT,
            "leader_ca_cert_file   = %s" % hcl_string(ca_file),
            "leader_tls_servername = %s" % hcl_string(spec.join_server_name),
        ], indent="  ")]
    return [_block("retry_join", [
        "leader_api_addr       = %s" % hcl_string("https://%s:%d" % (spec.pod_host(i), API_PORT)),
        "leader_ca_cert_file   = %s" % hcl_string(ca_file),
        "leader_tls_servername = %s" % hcl_string(spec.pod_host(i)),
    ], indent="  ") for i in range(spec.replicas)]


def _audit_blocks(spec):
    if not spec.flavour_info.declares_audit:
        return []
    blocks = []
    for device in spec.audit_devices:
        if device.type != "file":
            raise ValueError("audit device %r: only file devices can be declared in the server config here" % device.path)
        options = dict(device.options)
        options["file_path"] = spec.audit_file_path or "%s/audit.log" % spec.audit_dir
        option_lines = ["%s = %s" % (key, hcl_string(options[key])) for key in sorted(options)]
        blocks.append(
            "audit %s %s {\n  description = %s\n%s}\n" % (
                hcl_string(device.type), hcl_string(device.path), hcl_string(device.description),
                _block("options", option_lines, indent="  ")))
    return blocks


def render_seal(spec):
    """The awskms seal: the key ARN and region only; credentials come from IRSA (web identity)."""
    if not spec.kms_key_id or not spec.kms_region:
        raise ValueError("the awskms seal of %s needs kms_key_id and kms_region" % spec.cluster_name)
    return _block('seal "awskms"', [
        "region     = %s" % hcl_string(spec.kms_region),
        "kms_key_id = %s" % hcl_string(spec.kms_key_id),
    ])


def render_server_hcl(spec):
    """The server config the chart mounts: TLS listener, Raft with retry_join, awskms seal, audit (OpenBao)."""
    if spec.raft_join not in RAFT_JOIN_MODES:
        raise ValueError("raft_join must be one of %s, got %r" % (", ".join(RAFT_JOIN_MODES), spec.raft_join))
    if spec.replicas < 3 or spec.replicas % 2 == 0:
        raise ValueError("an HA Raft cluster needs an odd number of at least 3 voters, got %d" % spec.replicas)
    flavour = spec.flavour_info
    top = [
        "# Rendered by heracles_pulumi.server_config for %s (%s): edits are overwritten." % (spec.cluster_name, flavour.name),
        "cluster_name = %s" % hcl_string(spec.cluster_name),
        "ui           = %s" % ("true" if spec.ui else "false"),
        "log_level    = %s" % hcl_string(spec.log_level),
    ]
    if flavour.disable_mlock:
        top.append("disable_mlock = true")
    listener = _block('listener "tcp"', [
        "address            = %s" % hcl_string("[::]:%d" % API_PORT),
        "cluster_address    = %s" % hcl_string("[::]:%d" % CLUSTER_PORT),
        "tls_disable        = false",
        "tls_cert_file      = %s" % hcl_string("%s/tls.crt" % spec.tls_dir),
        "tls_key_file       = %s" % hcl_string("%s/tls.key" % spec.tls_dir),
        "tls_client_ca_file = %s" % hcl_string("%s/ca.crt" % spec.tls_dir),
        "tls_min_version    = \"tls12\"",
        "",
        "telemetry {",
        "  unauthenticated_metrics_access = %s" % ("true" if spec.metrics else "false"),
        "}",
    ])
    storage = "storage \"raft\" {\n%s%s}\n" % (
        "".join("  %s\n" % line for line in [
            "path                         = %s" % hcl_string(spec.data_dir),
            "performance_multiplier       = %d" % spec.performance_multiplier,
            "autopilot_reconcile_interval = %s" % hcl_string(spec.autopilot_reconcile_interval),
        ]), "".join(_retry_join_blocks(spec)))
    telemetry = _block("telemetry", ["prometheus_retention_time = \"30s\"", "disable_hostname          = true"])
    parts = ["\n".join(top) + "\n", listener, storage, render_seal(spec), 'service_registration "kubernetes" {}\n',
             telemetry] + _audit_blocks(spec)
    text = "\n".join(parts)
    _check_placeholders(text, spec)
    return text


def _check_placeholders(text, spec):
    """The chart's sed would rewrite these words: refuse a config that contains them by accident."""
    for word in CHART_PLACEHOLDERS:
        if word in text:
            raise ValueError("the rendered config for %s contains %r, which the chart replaces with sed"
                             % (spec.cluster_name, word))


@dataclass(frozen=True)
class ReleaseSpec:
    """Chart-level settings around the server config (sizes, image, service account annotations)."""

    image_tag: str
    service_account_annotations: Tuple[Tuple[str, str], ...]
    data_storage_size: str = "10Gi"
    audit_storage_size: str = "10Gi"
    storage_class: Optional[str] = None
    service_monitor: bool = False
    resources: Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], ...] = SERVER_RESOURCES
    priority_class_name: str = PRIORITY_CLASS
    tls_reload: bool = True
    tls_reload_interval_seconds: int = DEFAULT_INTERVAL_SECONDS


def priority_class_manifest(name=PRIORITY_CLASS, value=PRIORITY_CLASS_VALUE):
    """The PriorityClass the chart values name (``server.priorityClassName``, ESO's ``priorityClassName``)."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "globalDefault": False,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": "heracles.secrets: Vault/OpenBao and External Secrets Operator (the secrets path)",
    }


def server_image(spec, release):
    """The server image reference as the chart builds it (the TLS-reload sidecar runs the same image)."""
    flavour = spec.flavour_info
    reference = "%s/%s" % (flavour.image_registry, flavour.image_repository)
    return "%s:%s" % (reference, release.image_tag) if release.image_tag else reference


def tls_reload_sidecar(spec, release):
    """The sidecar that SIGHUPs the server when cert-manager's renewed certificate lands in the TLS volume."""
    return reload_container(
        image=server_image(spec, release), cli=spec.flavour_info.cli, watch_dir=spec.tls_dir,
        volume_name="userconfig-%s" % spec.tls_secret, run_as_user=SERVER_UID, run_as_group=SERVER_GID,
        interval_seconds=release.tls_reload_interval_seconds)


def server_labels(spec):
    return {"app.kubernetes.io/name": spec.flavour_info.chart, "app.kubernetes.io/instance": spec.release,
            "component": "server"}


def chart_values(spec, release):
    """The values for the hashicorp/vault or openbao/openbao chart (their layouts are the same)."""
    flavour = spec.flavour_info
    labels = server_labels(spec)
    storage_class = {"storageClass": release.storage_class} if release.storage_class else {}
    server = {
        "image": {"repository": flavour.image_repository, "tag": release.image_tag},
        "logLevel": spec.log_level,
        "updateStrategyType": "OnDelete",
        "extraEnvironmentVars": {
            flavour.env_prefix + "CACERT": "%s/ca.crt" % spec.tls_dir,
            flavour.env_prefix + "TLS_SERVER_NAME": spec.service_host(),
        },
        "extraVolumes": [{"type": "secret", "name": spec.tls_secret}],
        "resources": {kind: dict(values) for kind, values in release.resources},
        "statefulSet": {"securityContext": {"pod": {
            "runAsNonRoot": True, "runAsUser": SERVER_UID, "runAsGroup": SERVER_GID, "fsGroup": SERVER_GID,
            "seccompProfile": {"type": "RuntimeDefault"}}}},
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}},
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": labels},
        }],
        "dataStorage": dict({"enabled": True, "size": release.data_storage_size,
                             "mountPath": spec.data_dir}, **storage_class),
        "auditStorage": dict({"enabled": True, "size": release.audit_storage_size,
                              "mountPath": spec.audit_dir}, **storage_class),
        "authDelegator": {"enabled": True},
        "serviceAccount": {
            "create": True,
            "name": spec.release,
            "annotations": dict(release.service_account_annotations),
        },
        "ha": {
            "enabled": True,
            "replicas": spec.replicas,
            "raft": {"enabled": True, "setNodeId": True, "config": render_server_hcl(spec)},
            "disruptionBudget": {"enabled": True, "maxUnavailable": (spec.replicas - 1) // 2},
        },
        "standalone": {"enabled": False},
        "dev": {"enabled": False},
    }
    if flavour.image_registry != "docker.io":  # the openbao chart has image.registry; hashicorp/vault has not
        server["image"]["registry"] = flavour.image_registry
    if release.priority_class_name:
        server["priorityClassName"] = release.priority_class_name
    if release.tls_reload:
        # The chart mounts extraVolumes at <home>/userconfig/<name> as volume userconfig-<name>; the sidecar mounts the
        # same volume read-only and signals the server through the shared PID namespace.
        server["shareProcessNamespace"] = True
        server["extraContainers"] = [tls_reload_sidecar(spec, release)]
    return {
        "fullnameOverride": spec.release,
        "global": {"enabled": True, "tlsDisable": False,
                   "serverTelemetry": {"prometheusOperator": release.service_monitor}},
        "injector": {"enabled": False},
        "server": server,
        "ui": {"enabled": spec.ui},
        "serverTelemetry": {"serviceMonitor": {"enabled": release.service_monitor}},
    }
