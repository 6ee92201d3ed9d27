"""Workload delivery: every Kubernetes object that carries secrets from Vault into an app's pods, per environment.

Pure functions, no Pulumi import: ``pulumi/platform`` applies what ``render`` returns (``heracles:delivery``)
and ``tools/manifests.py`` (``make manifests ENV=<env>``) writes the very same objects as YAML for GitOps.

Input is ``vault_data.load_workloads`` (apps as data, already checked against the seed) and a ``DeliverySpec``
(where Vault, ESO and monitoring run, from the stack's config). Per environment:

* per app: a Namespace (Pod Security ``restricted``), its ServiceAccount, a SecretStore that logs in to Vault
  *as the app* (its service account, its Kubernetes auth role: it reads only what the app's Vault policy
  allows), the ConfigMap with Vault's CA, one ExternalSecret per declared Secret, per database role a
  VaultDynamicSecret generator (logging in as the app too) and the ExternalSecret that refreshes its credential
  before the TTL ends, a Role + RoleBinding that
  let only the app's service account and its operator group ``get`` those Secrets (``resourceNames``), and
  NetworkPolicies: default deny, DNS, its own namespace, Vault's API, and the traffic the data declares;
* around them: NetworkPolicies in Vault's namespace (8200 only from ESO, the app namespaces, the backup job,
  monitoring and declared client ranges; 8201 only from the peers) and in ESO's (egress to Vault, DNS and
  HTTPS for the API server and AWS; ingress to the webhook);
* with monitoring: a PrometheusRule with the seeds' alerts (sealed or leaderless Vault, a node down, autopilot
  unhealthy, ExternalSecret sync errors, a Secret not refreshed within twice its interval, a missed backup,
  a certificate close to expiry).
"""

from dataclasses import dataclass
from typing import Tuple

ESO_API = "external-secrets.io/v1"
GENERATORS_API = "generators.external-secrets.io/v1alpha1"
MONITORING_API = "monitoring.coreos.com/v1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "heracles"}
APP_LABEL = "heracles.secrets/app"
ENV_LABEL = "heracles.secrets/environment"
AWS_SECRETS_LABEL = "heracles.secrets/aws-secrets"
VAULT_CA_CONFIGMAP = "vault-ca"
VAULT_CA_KEY = "ca.crt"
API_PORT, CLUSTER_PORT = 8200, 8201
ESO_WEBHOOK_PORT, ESO_METRICS_PORT = 10250, 8080
# The backup CronJob's pods carry these labels (backup.cronjob_spec): Vault's API policy admits them by label.
BACKUP_POD_LABELS = {"app.kubernetes.io/name": "vault-backup", "app.kubernetes.io/component": "raft-snapshot"}
DNS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
CERT_EXPIRY_WARNING_DAYS = 7  # cert-manager renews 15 days ahead (vault_release.certificate_manifest): 7 left = stuck


@dataclass(frozen=True)
class DeliverySpec:
    """Where things run, from the stack's config (``spec_from_settings``); apps come from vault/ data."""

    vault_address: str
    vault_namespace: str
    vault_pod_labels: Tuple[Tuple[str, str], ...]
    vault_tls_secret: str
    eso_release: str = "external-secrets"
    ca_bundle: str = ""
    pod_security_version: str = "latest"
    monitoring: bool = False
    monitoring_namespace: str = "monitoring"
    rule_labels: Tuple[Tuple[str, str], ...] = ()
    backup_cronjob: str = ""
    backup_interval_seconds: int = 3600
    https_egress_cidrs: Tuple[str, ...] = ("0.0.0.0/0",)
    vault_client_cidrs: Tuple[str, ...] = ()
    operations_image: str = ""  # the image with this collection (images/operations); "" = no rotation CronJob


def spec_from_settings(settings, server, backup_cronjob="", backup_schedule="0 * * * *"):
    """The DeliverySpec of a stack: ``settings`` is its PlatformSettings, ``server`` its ServerSpec."""
    from heracles_pulumi.server_config import server_labels  # pylint: disable=import-outside-toplevel

    return DeliverySpec(
        vault_address=server.active_address, vault_namespace=server.namespace,
        vault_pod_labels=tuple(sorted(server_labels(server).items())), vault_tls_secret=server.tls_secret,
        ca_bundle=settings.vault_ca_bundle, pod_security_version="v" + settings.cluster_version,
        monitoring=settings.monitoring, monitoring_namespace=settings.monitoring_namespace,
        rule_labels=tuple(sorted(_pairs(settings.prometheus_rule_labels))),
        backup_cronjob=backup_cronjob, backup_interval_seconds=cron_interval_seconds(backup_schedule),
        https_egress_cidrs=tuple(settings.https_egress_cidrs), vault_client_cidrs=tuple(settings.vault_client_cidrs),
        operations_image=settings.operations_image)


def _pairs(entries):
    """``["k=v", ...]`` (a Pulumi config list) as pairs."""
    out = []
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ValueError("label %r must look like key=value" % entry)
        out.append((key, value))
    return out


def cron_interval_seconds(schedule):
    """The longest gap between runs of a five-field cron ``schedule``, as far as the missed-backup alert needs it."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError("backup schedule %r is not a five-field cron expression" % schedule)
    minute, hour, dom, month, dow = fields
    if minute.startswith("*/"):
        return int(minute[2:]) * 60
    if hour == "*":
        return 3600
    if hour.startswith("*/"):
        return int(hour[2:]) * 3600
    if dom == "*" and month == "*" and dow == "*":
        return 86400 // (hour.count(",") + 1) if "," in hour else 86400
    return 7 * 86400 if dom == "*" and month == "*" else 31 * 86400


# --- helpers -------------------------------------------------------------------------------------------------
def _meta(name, namespace=None, labels=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_BY, **(labels or {}))
    return meta


def _ns_selector(namespace):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def _tcp(*ports):
    return [{"protocol": "TCP", "port": port} for port in ports]


def _network_policy(name, namespace, pod_selector, labels, ingress=None, egress=None):
    spec = {"podSelector": pod_selector, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(name, namespace, labels), "spec": spec}


def _vault_pods(spec):
    return dict(_ns_selector(spec.vault_namespace), podSelector={"matchLabels": dict(spec.vault_pod_labels)})


def _eso_pods(spec, workloads):
    return dict(_ns_selector(workloads["eso"]["namespace"]),
                podSelector={"matchLabels": {"app.kubernetes.io/instance": spec.eso_release}})


def _ip_blocks(cidrs):
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def _declared_peers(rules):
    """The data's ``network.egress``/``ingress`` rules as NetworkPolicy rules (one per entry)."""
    out = []
    for rule in rules:
        peer = _ns_selector(rule["namespace"]) if rule["namespace"] else {"ipBlock": {"cidr": rule["cidr"]}}
        out.append({"peers": [peer], "ports": _tcp(*rule["ports"])})
    return out


# --- per app -------------------------------------------------------------------------------------------------
def namespace(app, env, spec):
    labels = {APP_LABEL: app["name"], ENV_LABEL: env}
    for mode in ("enforce", "audit", "warn"):
        labels["pod-security.kubernetes.io/%s" % mode] = "restricted"
        labels["pod-security.kubernetes.io/%s-version" % mode] = spec.pod_security_version
    if app["aws_secrets"]:
        labels[AWS_SECRETS_LABEL] = "true"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(app["namespace"], labels=labels)}


def service_account(app, env):
    # ESO asks for this account's tokens through TokenRequest; pods that need one mount a projected token.
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(app["service_account"], app["namespace"], {APP_LABEL: app["name"], ENV_LABEL: env}),
            "automountServiceAccountToken": False}


def vault_ca(app, env, spec):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(VAULT_CA_CONFIGMAP, app["namespace"], {APP_LABEL: app["name"], ENV_LABEL: env}),
            "data": {VAULT_CA_KEY: spec.ca_bundle}}


def secret_store(app, workloads, spec):
    """The app's own store: Kubernetes auth as the app's service account, through the app's Vault role."""
    return {"apiVersion": ESO_API, "kind": "SecretStore",
            "metadata": _meta(workloads["store_name"], app["namespace"],
                              {APP_LABEL: app["name"], ENV_LABEL: workloads["environment"]}),
            "spec": {"provider": {"vault": {
                "server": spec.vault_address,
                "path": workloads["kv"],
                "version": "v2",
                "caProvider": {"type": "ConfigMap", "name": VAULT_CA_CONFIGMAP, "key": VAULT_CA_KEY},
                "auth": {"kubernetes": {
                    "mountPath": workloads["auth_mount"],
                    "role": app["role"],
                    "serviceAccountRef": {"name": app["service_account"], "audiences": [workloads["audience"]]},
                }},
            }}}}


def external_secret(app, secret, workloads):
    target = {"name": secret["name"], "creationPolicy": secret["creation_policy"],
              "deletionPolicy": secret["deletion_policy"]}
    if secret["template"] or secret["type"] != "Opaque":
        template = {"engineVersion": "v2", "type": secret["type"]}
        if secret["template"]:
            template["mergePolicy"] = "Merge" if secret["merge_keys"] else "Replace"
            template["data"] = dict(secret["template"])
        target["template"] = template
    es_spec = {"refreshInterval": secret["refresh_interval"],
               "secretStoreRef": {"name": workloads["store_name"], "kind": "SecretStore"},
               "target": target}
    if secret["data"]:
        es_spec["data"] = [{"secretKey": ref["key"], "remoteRef": {"key": ref["remote_key"], "property": ref["property"]}}
                           for ref in secret["data"]]
    if secret["extract"]:
        es_spec["dataFrom"] = [{"extract": {"key": remote}} for remote in secret["extract"]]
    return {"apiVersion": ESO_API, "kind": "ExternalSecret",
            "metadata": _meta(secret["name"], app["namespace"],
                              {APP_LABEL: app["name"], ENV_LABEL: workloads["environment"]}),
            "spec": es_spec}


def _vault_provider(app, workloads, spec):
    """Vault as the app itself: the app's service account and Kubernetes auth role (the SecretStore's login)."""
    return {
        "server": spec.vault_address,
        "caProvider": {"type": "ConfigMap", "name": VAULT_CA_CONFIGMAP, "key": VAULT_CA_KEY},
        "auth": {"kubernetes": {
            "mountPath": workloads["auth_mount"],
            "role": app["role"],
            "serviceAccountRef": {"name": app["service_account"], "audiences": [workloads["audience"]]},
        }},
    }


def vault_dynamic_secret(app, role, workloads, spec):
    """The generator that issues a credential of the app's database role: it logs in as the app (the app's policy
    allows ``creds/<role>`` of its own roles only), like the app's SecretStore."""
    return {"apiVersion": GENERATORS_API, "kind": "VaultDynamicSecret",
            "metadata": _meta(role["name"], app["namespace"], {APP_LABEL: app["name"], ENV_LABEL: workloads["environment"]}),
            "spec": {"method": "GET", "path": role["creds_path"], "resultType": "Data",
                     "provider": _vault_provider(app, workloads, spec)}}


def database_external_secret(app, role, workloads):
    """The Secret with the credential (``username``, ``password``, or the template's keys), refreshed before the
    credential's TTL ends: each refresh issues a new credential; the old one lives out its lease."""
    target = {"name": role["secret"], "creationPolicy": "Owner", "deletionPolicy": "Delete"}
    if role["template"]:
        target["template"] = {"engineVersion": "v2", "type": "Opaque", "mergePolicy": "Merge",
                              "data": dict(role["template"])}
    return {"apiVersion": ESO_API, "kind": "ExternalSecret",
            "metadata": _meta(role["secret"], app["namespace"], {APP_LABEL: app["name"], ENV_LABEL: workloads["environment"]}),
            "spec": {"refreshInterval": role["refresh_interval"], "refreshPolicy": "Periodic", "target": target,
                     "dataFrom": [{"sourceRef": {"generatorRef": {
                         "apiVersion": GENERATORS_API, "kind": "VaultDynamicSecret", "name": role["name"]}}}]}}


def synced_secrets(app):
    """The Kubernetes Secrets ESO writes for the app: declared ones and database credentials."""
    return sorted([secret["name"] for secret in app["secrets"]] + [role["secret"] for role in app.get("database") or []])


def secret_readers(app, env):
    """Role + RoleBinding: ``get`` on exactly the app's synced Secrets, for its service account and operators."""
    name = "%s-secret-readers" % app["name"]
    labels = {APP_LABEL: app["name"], ENV_LABEL: env}
    subjects = [{"kind": "ServiceAccount", "name": app["service_account"], "namespace": app["namespace"]}]
    if app["operator_group"]:
        subjects.append({"kind": "Group", "name": app["operator_group"], "apiGroup": "rbac.authorization.k8s.io"})
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _meta(name, app["namespace"], labels),
            "rules": [{"apiGroups": [""], "resources": ["secrets"],
                       "resourceNames": synced_secrets(app), "verbs": ["get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": _meta(name, app["namespace"], labels), "subjects": subjects,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}}
    return [role, binding]


def app_network_policies(app, env, spec):
    """Default deny, then only DNS, the app's own namespace, Vault's API and what the data declares."""
    ns, labels = app["namespace"], {APP_LABEL: app["name"], ENV_LABEL: env}
    everything = {}
    policies = [
        _network_policy("default-deny", ns, everything, labels, ingress=[], egress=[]),
        _network_policy("allow-dns", ns, everything, labels, egress=[{"to": [DNS_PEER], "ports": DNS_PORTS}]),
        _network_policy("allow-same-namespace", ns, everything, labels,
                        ingress=[{"from": [{"podSelector": {}}]}], egress=[{"to": [{"podSelector": {}}]}]),
        _network_policy("allow-vault-api", ns, everything, labels,
                        egress=[{"to": [_vault_pods(spec)], "ports": _tcp(API_PORT)}]),
    ]
    if app["egress"]:
        policies.append(_network_policy("allow-declared-egress", ns, everything, labels, egress=[
            {"to": rule["peers"], "ports": rule["ports"]} for rule in _declared_peers(app["egress"])]))
    if app["ingress"]:
        policies.append(_network_policy("allow-declared-ingress", ns, everything, labels, ingress=[
            {"from": rule["peers"], "ports": rule["ports"]} for rule in _declared_peers(app["ingress"])]))
    return policies


def app_objects(app, workloads, spec):
    env = workloads["environment"]
    objects = [namespace(app, env, spec), service_account(app, env)]
    if spec.ca_bundle:
        objects.append(vault_ca(app, env, spec))
    objects.append(secret_store(app, workloads, spec))
    objects.extend(external_secret(app, secret, workloads) for secret in app["secrets"])
    for role in app.get("database") or []:
        objects.append(vault_dynamic_secret(app, role, workloads, spec))
        objects.append(database_external_secret(app, role, workloads))
    if synced_secrets(app):
        objects.extend(secret_readers(app, env))
    objects.extend(app_network_policies(app, env, spec))
    return objects


# --- around the apps -----------------------------------------------------------------------------------------
def vault_network_policies(workloads, spec):
    """Vault's namespace: 8200 from ESO, app namespaces, the backup job, monitoring, declared clients; 8201 peers."""
    ns, labels = spec.vault_namespace, {ENV_LABEL: workloads["environment"]}
    vault = {"matchLabels": dict(spec.vault_pod_labels)}
    peers = {"podSelector": vault}
    clients = [_eso_pods(spec, workloads), peers, {"podSelector": {"matchLabels": dict(BACKUP_POD_LABELS)}}]
    clients.extend(_ns_selector(app["namespace"]) for app in workloads["apps"])
    if rotation_job_enabled(workloads, spec):
        clients.append(_ns_selector(workloads["rotation_job"]["namespace"]))
    if spec.monitoring:
        clients.append(_ns_selector(spec.monitoring_namespace))
    clients.extend(_ip_blocks(spec.vault_client_cidrs))
    backup = {"matchLabels": dict(BACKUP_POD_LABELS)}
    return [
        _network_policy("default-deny", ns, {}, labels, ingress=[], egress=[]),
        _network_policy("vault-api", ns, vault, labels, ingress=[{"from": clients, "ports": _tcp(API_PORT)}]),
        _network_policy("vault-cluster", ns, vault, labels, ingress=[{"from": [peers], "ports": _tcp(CLUSTER_PORT)}]),
        # peers (forwarding, raft, retry_join), DNS, HTTPS: the API server (TokenReview, auto_join) and AWS KMS
        _network_policy("vault-egress", ns, vault, labels, egress=[
            {"to": [peers], "ports": _tcp(API_PORT, CLUSTER_PORT)},
            {"to": [DNS_PEER], "ports": DNS_PORTS},
            {"to": _ip_blocks(spec.https_egress_cidrs), "ports": _tcp(443)}]),
        # the snapshot job: Vault's API, DNS, HTTPS to S3
        _network_policy("backup-egress", ns, backup, labels, egress=[
            {"to": [_vault_pods(spec)], "ports": _tcp(API_PORT)},
            {"to": [DNS_PEER], "ports": DNS_PORTS},
            {"to": _ip_blocks(spec.https_egress_cidrs), "ports": _tcp(443)}]),
    ]


def eso_network_policies(workloads, spec):
    """ESO's namespace: out to Vault, DNS and HTTPS (API server, AWS); in to the webhook (and metrics)."""
    ns, labels = workloads["eso"]["namespace"], {ENV_LABEL: workloads["environment"]}
    pods = {"matchLabels": {"app.kubernetes.io/instance": spec.eso_release}}
    ingress = [{"ports": _tcp(ESO_WEBHOOK_PORT)}]  # the API server calls the webhook: it has no pod identity
    if spec.monitoring:
        ingress.append({"from": [_ns_selector(spec.monitoring_namespace)], "ports": _tcp(ESO_METRICS_PORT)})
    return [
        _network_policy("default-deny", ns, {}, labels, ingress=[], egress=[]),
        _network_policy("external-secrets", ns, pods, labels, ingress=ingress, egress=[
            {"to": [_vault_pods(spec)], "ports": _tcp(API_PORT)},
            {"to": [DNS_PEER], "ports": DNS_PORTS},
            {"to": _ip_blocks(spec.https_egress_cidrs), "ports": _tcp(443)}]),
    ]


def _alert(name, expr, for_, severity, summary, description):
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description}}


def _seconds(value):
    return "%ds" % int(value)


def alert_rules(workloads, spec):
    """The seeds' alerts, with thresholds from the data (refresh intervals) and the stack (backup schedule)."""
    vault = 'namespace="%s"' % spec.vault_namespace
    vault_rules = [
        _alert("VaultSealed", "vault_core_unsealed{%s} == 0" % vault, "2m", "critical",
               "Vault node {{ $labels.pod }} is sealed",
               "A sealed node serves nothing; run playbooks/unseal-recovery.yml (auto-unseal: check the KMS key)."),
        _alert("VaultLeaderless", "(sum(vault_core_active{%s}) or vector(0)) < 1" % vault, "1m", "critical",
               "Vault has no active node", "No node is active: quorum is lost or every node is sealed."),
        _alert("VaultNodeDown", 'up{%s, pod=~".+"} == 0' % vault, "5m", "critical",
               "Vault node {{ $labels.pod }} is down", "Prometheus cannot scrape it for 5 minutes (seed: VaultDown)."),
        _alert("VaultAutopilotUnhealthy", "vault_autopilot_healthy{%s} == 0" % vault, "5m", "warning",
               "Raft autopilot reports the cluster unhealthy", "A voter is failing or lagging: check raft peers."),
        _alert("VaultCertificateExpiring",
               "certmanager_certificate_expiration_timestamp_seconds{%s} - time() < %d"
               % (vault, CERT_EXPIRY_WARNING_DAYS * 86400), "1h", "warning",
               "Certificate {{ $labels.name }} expires within %d days" % CERT_EXPIRY_WARNING_DAYS,
               "cert-manager should have renewed it 15 days ahead: check the Certificate's events and issuer."),
    ]
    if spec.backup_cronjob:
        max_age = 2 * spec.backup_interval_seconds
        vault_rules.append(_alert(
            "VaultBackupMissed",
            '(time() - kube_cronjob_status_last_successful_time{%s, cronjob="%s"}) > %d'
            % (vault, spec.backup_cronjob, max_age), "10m", "critical",
            "No successful raft snapshot for twice the backup interval",
            "CronJob %s has not succeeded for %s: check its jobs' logs (playbooks/backup.yml can run by hand)."
            % (spec.backup_cronjob, _seconds(max_age))))
    eso_rules = [
        _alert("ExternalSecretSyncError", "sum by (namespace, name) (increase(externalsecret_sync_calls_error[5m])) > 0",
               "5m", "warning", "ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} fails to sync",
               "Run playbooks/eso-sync.yml for a diagnosis (store, role, policy, key)."),
        _alert("ExternalSecretNotReady",
               'externalsecret_status_condition{condition="Ready", status="False"} == 1', "10m", "warning",
               "ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} is not Ready",
               "Its Secret keeps the last synced value; run playbooks/eso-sync.yml."),
    ]
    for app in workloads["apps"]:
        # a database credential's Secret must refresh before its TTL ends: the window is capped at the TTL
        refreshed = [dict(name=secret["name"], refresh_seconds=secret["refresh_seconds"], window=2 * secret["refresh_seconds"],
                          refresh_interval=secret["refresh_interval"]) for secret in app["secrets"]]
        refreshed += [dict(name=role["secret"], refresh_seconds=role["refresh_seconds"], refresh_interval=role["refresh_interval"],
                           window=min(2 * role["refresh_seconds"], role["default_ttl"])) for role in app.get("database") or []]
        for secret in refreshed:
            window = secret["window"]
            selector = 'namespace="%s", name="%s"' % (app["namespace"], secret["name"])
            eso_rules.append(_alert(
                "ExternalSecretStale",
                "(sum(increase(externalsecret_sync_calls_total{%s}[%s])) - "
                "(sum(increase(externalsecret_sync_calls_error{%s}[%s])) or vector(0))) < 1"
                % (selector, _seconds(window), selector, _seconds(window)), "5m", "warning",
                "Secret %s/%s was not refreshed within twice its interval" % (app["namespace"], secret["name"]),
                "No successful sync in %s (refreshInterval %s)." % (_seconds(window), secret["refresh_interval"])))
    return [{"name": "heracles-vault", "rules": vault_rules}, {"name": "heracles-external-secrets", "rules": eso_rules}]


# --- the in-cluster rotation job ----------------------------------------------------------------------------
ROTATION_JOB = "heracles-rotate"
ROTATION_TOKEN_DIR = "/var/run/secrets/vault"
ROTATION_CA_DIR = "/etc/heracles/vault-ca"
ROTATION_INVENTORY_DIR = "/etc/heracles/inventory"
ROTATION_DATA_DIR = "/etc/heracles/vault"  # the vault/ data in the operations image (images/operations/Containerfile)
ROTATION_DEADLINE_SECONDS = 3600


def rotation_job_enabled(workloads, spec):
    if not (workloads.get("rotation_job") and spec.operations_image):
        return False
    if "@sha256:" not in spec.operations_image:
        # it writes every app's secrets and restarts their workloads: a moved tag must not change what runs
        raise ValueError("operationsImage %r must be pinned by digest (<image>:<tag>@sha256:<digest>)"
                         % spec.operations_image)
    return True


def rotation_inventory(workloads, spec):
    """The inventory the job's playbooks/rotate.yml runs with: Vault in the cluster, Kubernetes auth as the job."""
    job = workloads["rotation_job"]
    return {"all": {
        "children": {"vault_ops": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}},
        "vars": {
            "heracles_vault_connection": {
                "url": spec.vault_address, "ca_cert": "%s/%s" % (ROTATION_CA_DIR, VAULT_CA_KEY),
                "auth_method": "kubernetes", "role": job["role"], "auth_mount_point": workloads["auth_mount"],
                "jwt_path": "%s/token" % ROTATION_TOKEN_DIR},
            "seed_environments": [workloads["environment"]],
        }}}


def rotation_vars():
    """Extra vars of the job's run (rotate.yml's play variables: only extra vars override them)."""
    return {"rotate_data_dir": ROTATION_DATA_DIR,
            "rotate_consumers": True,  # in-cluster: sync and restart through its own service account
            "rotate_encryption_key": False}  # sys/rotate and rekeying stay operator actions (no sys/ in its policy)


def rotation_job_objects(workloads, spec):
    """Namespace, service account, inventory, CronJob, network policies of the job, and in each app namespace a
    Role that lets it get/patch exactly the ExternalSecrets and consuming workloads the data names."""
    import json  # pylint: disable=import-outside-toplevel

    job, env = workloads["rotation_job"], workloads["environment"]
    ns, labels = job["namespace"], {ENV_LABEL: env, "app.kubernetes.io/name": ROTATION_JOB}
    namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, labels=dict(labels))}
    for mode in ("enforce", "audit", "warn"):
        namespace_obj["metadata"]["labels"]["pod-security.kubernetes.io/%s" % mode] = "restricted"
        namespace_obj["metadata"]["labels"]["pod-security.kubernetes.io/%s-version" % mode] = spec.pod_security_version
    objects = [
        namespace_obj,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(job["service_account"], ns, labels),
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(ROTATION_JOB, ns, labels),
         "data": {"inventory.yml": json.dumps(rotation_inventory(workloads, spec), indent=2, sort_keys=True),
                  "vars.yml": json.dumps(rotation_vars(), indent=2, sort_keys=True)}},
    ]
    if spec.ca_bundle:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(VAULT_CA_CONFIGMAP, ns, labels),
                        "data": {VAULT_CA_KEY: spec.ca_bundle}})
    objects.append(rotation_cronjob(workloads, spec, labels))
    for app in workloads["apps"]:
        objects.extend(rotation_rbac(app, job, env))
    objects.extend([
        _network_policy("default-deny", ns, {}, labels, ingress=[], egress=[]),
        _network_policy(ROTATION_JOB, ns, {}, labels, egress=[
            {"to": [_vault_pods(spec)], "ports": _tcp(API_PORT)},
            {"to": [DNS_PEER], "ports": DNS_PORTS},
            {"to": _ip_blocks(spec.https_egress_cidrs), "ports": _tcp(443)}]),  # the API server
    ])
    return objects


def rotation_rbac(app, job, env):
    """get/patch on the app's ExternalSecrets and consumers by name; nothing for a kind the app has none of."""
    names = {"externalsecrets": sorted(secret["name"] for secret in app["secrets"])}
    plural = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
    for secret in app["secrets"]:
        for consumer in secret["consumers"]:
            names.setdefault(plural[consumer["kind"]], set()).add(consumer["name"])
    rules = []
    for resource, group in (("externalsecrets", "external-secrets.io"), ("deployments", "apps"),
                            ("statefulsets", "apps"), ("daemonsets", "apps")):
        if names.get(resource):  # an empty resourceNames would grant every object of the kind
            rules.append({"apiGroups": [group], "resources": [resource], "resourceNames": sorted(names[resource]),
                          "verbs": ["get", "patch"]})
    if not rules:
        return []
    name, labels = "%s-%s" % (ROTATION_JOB, app["name"]), {APP_LABEL: app["name"], ENV_LABEL: env}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(name, app["namespace"], labels),
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(name, app["namespace"], labels),
         "subjects": [{"kind": "ServiceAccount", "name": job["service_account"], "namespace": job["namespace"]}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}},
    ]


def rotation_cronjob(workloads, spec, labels):
    """playbooks/rotate.yml on the data's schedule, as a restricted pod: read-only root, no privilege, projected
    tokens only (Vault's audience for the login, the API server's for syncs and restarts)."""
    job = workloads["rotation_job"]
    container = {
        "name": "rotate", "image": spec.operations_image, "imagePullPolicy": "Always",
        "command": ["ansible-playbook", "-i", "%s/inventory.yml" % ROTATION_INVENTORY_DIR,
                    "-e", "@%s/vars.yml" % ROTATION_INVENTORY_DIR, "heracles.secrets.rotate"],
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "ANSIBLE_LOCAL_TEMP", "value": "/tmp/.ansible"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": 10001, "runAsGroup": 10001, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "inventory", "mountPath": ROTATION_INVENTORY_DIR, "readOnly": True},
            {"name": "vault-ca", "mountPath": ROTATION_CA_DIR, "readOnly": True},
            {"name": "vault-token", "mountPath": ROTATION_TOKEN_DIR, "readOnly": True},
            {"name": "kube-api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}],
    }
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {"name": "inventory", "configMap": {"name": ROTATION_JOB}},
        {"name": "vault-ca", "configMap": {"name": VAULT_CA_CONFIGMAP}},
        {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": workloads["audience"], "expirationSeconds": 900, "path": "token"}}]}},
        # what automountServiceAccountToken would mount, spelled out (the pod spec turns automounting off)
        {"name": "kube-api", "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ]
    pod = {"metadata": {"labels": dict(labels)}, "spec": {
        "serviceAccountName": job["service_account"], "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container], "volumes": volumes}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta(ROTATION_JOB, job["namespace"], labels),
            "spec": {"schedule": job["schedule"], "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 1, "activeDeadlineSeconds": ROTATION_DEADLINE_SECONDS,
                                              "template": pod}}}}


def prometheus_rule(workloads, spec):
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule",
            "metadata": _meta("heracles-secrets", spec.vault_namespace,
                              dict(spec.rule_labels, **{ENV_LABEL: workloads["environment"]})),
            "spec": {"groups": alert_rules(workloads, spec)}}


def render(workloads, spec):
    """Every delivery object of one environment, in apply order (namespaces before what lives in them)."""
    objects = []
    for app in workloads["apps"]:
        objects.extend(app_objects(app, workloads, spec))
    if rotation_job_enabled(workloads, spec):
        objects.extend(rotation_job_objects(workloads, spec))
    objects.extend(vault_network_policies(workloads, spec))
    objects.extend(eso_network_policies(workloads, spec))
    if spec.monitoring:
        objects.append(prometheus_rule(workloads, spec))
    return objects


def object_id(obj):
    """``<apiVersion>/<kind>/<namespace>/<name>`` (cluster-scoped objects: ``_`` for the namespace)."""
    meta = obj["metadata"]
    return "%s/%s/%s/%s" % (obj["apiVersion"], obj["kind"], meta.get("namespace", "_"), meta["name"])


def file_name(obj):
    """One file per object, for GitOps trees: ``<namespace>--<kind>--<name>.yaml``."""
    meta = obj["metadata"]
    return "%s--%s--%s.yaml" % (meta.get("namespace", "_cluster"), obj["kind"].lower(), meta["name"])
