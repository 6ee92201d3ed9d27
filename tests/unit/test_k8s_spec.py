"""tests/lib/k8s_spec.py can fail: valid objects pass, each broken one fails with a message naming the problem.

A validator that passes everything would make every renderer test green; these cases pin that it does not.
"""

import copy
import glob
import os

import pytest
import yaml

import k8s_spec

EXTERNAL_SECRET = yaml.safe_load("""
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app-db, namespace: apps, labels: {app.kubernetes.io/part-of: heracles}}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: SecretStore}
  target:
    name: app-db
    creationPolicy: Merge
    template:
      engineVersion: v2
      type: Opaque
      metadata: {labels: {app: db}}
      data:
        url: "postgres://{{ .user }}:{{ .password }}@db:5432/app"
  data:
    - secretKey: user
      remoteRef: {key: apps/db, property: username}
    - secretKey: password
      remoteRef: {key: apps/db, property: password}
""")

SECRET_STORE = yaml.safe_load("""
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: vault, namespace: apps}
spec:
  provider:
    vault:
      server: https://vault.vault.svc:8200
      path: kv-dev
      version: v2
      caProvider: {type: ConfigMap, name: vault-ca, key: ca.crt}
      auth:
        kubernetes:
          mountPath: kubernetes-dev
          role: apps
          serviceAccountRef: {name: external-secrets, audiences: [vault]}
""")

OPENBAO_STORE = yaml.safe_load("""
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: openbao}
spec:
  provider:
    openBao:
      server: https://openbao.vault.svc:8200
      caProvider: {type: ConfigMap, name: bao-ca, key: ca.crt, namespace: vault}
      auth:
        tokenSecretRef: {name: bao-token, key: token, namespace: vault}
""")

VAULT_DYNAMIC_SECRET = yaml.safe_load("""
apiVersion: generators.external-secrets.io/v1alpha1
kind: VaultDynamicSecret
metadata: {name: db-creds, namespace: apps}
spec:
  path: /database/creds/app
  method: GET
  resultType: Data
  provider:
    server: https://vault.vault.svc:8200
    version: v2
    auth:
      kubernetes:
        mountPath: kubernetes-dev
        role: apps
        serviceAccountRef: {name: app, audiences: [vault]}
""")

PROMETHEUS_RULE = yaml.safe_load("""
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: vault, namespace: monitoring, labels: {release: kube-prometheus-stack}}
spec:
  groups:
    - name: vault.rules
      interval: 1m
      rules:
        - alert: VaultSealed
          expr: vault_core_unsealed == 0
          for: 5m
          labels: {severity: critical}
          annotations: {summary: "Vault {{ $labels.instance }} is sealed"}
        - record: vault:leader:count
          expr: sum(vault_core_active)
""")

CERTIFICATE = yaml.safe_load("""
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: vault-tls, namespace: vault}
spec:
  secretName: vault-tls
  duration: 2160h
  renewBefore: 360h
  commonName: vault.vault.svc
  dnsNames: [vault, vault.vault.svc, vault.vault.svc.cluster.local]
  ipAddresses: [127.0.0.1]
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}
  usages: [server auth, client auth]
  issuerRef: {name: vault-ca, kind: ClusterIssuer, group: cert-manager.io}
""")

NAMESPACE = yaml.safe_load("""
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {pod-security.kubernetes.io/enforce: restricted}}
""")

ROLE = yaml.safe_load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: eso-reader, namespace: apps}
rules:
  - apiGroups: [external-secrets.io]
    resources: [externalsecrets, secretstores]
    verbs: [get, list, watch]
""")

ROLE_BINDING = yaml.safe_load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: eso-reader, namespace: apps}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: eso-reader}
subjects:
  - {kind: ServiceAccount, name: external-secrets, namespace: external-secrets}
""")

NETWORK_POLICY = yaml.safe_load("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: vault-ingress, namespace: vault}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: vault}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: external-secrets}}
      ports:
        - {protocol: TCP, port: 8200}
        - {protocol: TCP, port: https}
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
""")

SERVICE_ACCOUNT = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "apps"}}

VALID = {
    "ExternalSecret": EXTERNAL_SECRET,
    "SecretStore": SECRET_STORE,
    "ClusterSecretStore-openBao": OPENBAO_STORE,
    "VaultDynamicSecret": VAULT_DYNAMIC_SECRET,
    "PrometheusRule": PROMETHEUS_RULE,
    "Certificate": CERTIFICATE,
    "Namespace": NAMESPACE,
    "ServiceAccount": SERVICE_ACCOUNT,
    "Role": ROLE,
    "RoleBinding": ROLE_BINDING,
    "NetworkPolicy": NETWORK_POLICY,
}


def broken(obj, change):
    """A deep copy of obj with change(copy) applied: the valid fixtures stay untouched."""
    out = copy.deepcopy(obj)
    change(out)
    return out


# (id, object, substring every failing case must show in one message)
BROKEN = [
    ("es-creationPolicy-enum",
     broken(EXTERNAL_SECRET, lambda o: o["spec"]["target"].update(creationPolicy="Sometimes")),
     "spec.target.creationPolicy: 'Sometimes' is not one of"),
    ("es-typo-refreshIntervall", broken(EXTERNAL_SECRET, lambda o: o["spec"].update(refreshIntervall="1h")),
     "spec.refreshIntervall: unknown field"),
    ("es-typo-in-list-item", broken(EXTERNAL_SECRET, lambda o: o["spec"]["data"][1]["remoteRef"].update(proprety="x")),
     "spec.data[1].remoteRef.proprety: unknown field"),
    ("es-metadata-typo", broken(EXTERNAL_SECRET, lambda o: o["metadata"].update(annotation={"a": "b"})),
     "'annotation' was unexpected"),
    ("es-v1beta1-not-served", broken(EXTERNAL_SECRET, lambda o: o.update(apiVersion="external-secrets.io/v1beta1")),
     "no schema for external-secrets.io/v1beta1/ExternalSecret (not served"),
    ("store-missing-provider", broken(SECRET_STORE, lambda o: o["spec"].pop("provider")),
     "spec: 'provider' is a required property"),
    ("store-audiences-not-list", broken(SECRET_STORE, lambda o: o["spec"]["provider"]["vault"]["auth"]["kubernetes"]
                                        ["serviceAccountRef"].update(audiences="vault")),
     "serviceAccountRef.audiences: 'vault' is not of type 'array'"),
    ("openbao-cel-two-ca-sources", broken(OPENBAO_STORE, lambda o: o["spec"]["provider"]["openBao"].update(
        caBundle="LS0tLS1CRUdJTi0tLS0t")), "spec.provider.openBao: at most one of the fields in [caBundle caProvider]"),
    ("openbao-cel-no-auth-method", broken(OPENBAO_STORE, lambda o: o["spec"]["provider"]["openBao"].update(auth={})),
     "spec.provider.openBao.auth: exactly one of the fields in [appRole tokenSecretRef userPass]"),
    ("vds-missing-path", broken(VAULT_DYNAMIC_SECRET, lambda o: o["spec"].pop("path")),
     "spec: 'path' is a required property"),
    ("vds-resultType-enum", broken(VAULT_DYNAMIC_SECRET, lambda o: o["spec"].update(resultType="Json")),
     "spec.resultType: 'Json' is not one of"),
    ("rule-for-not-a-duration", broken(PROMETHEUS_RULE, lambda o: o["spec"]["groups"][0]["rules"][0].update(
        **{"for": "5 minutes"})), "spec.groups[0].rules[0].for: '5 minutes' does not match"),
    ("rule-typo", broken(PROMETHEUS_RULE, lambda o: o["spec"]["groups"][0]["rules"][0].update(expresion="up")),
     "spec.groups[0].rules[0].expresion: unknown field"),
    ("cert-algorithm-enum", broken(CERTIFICATE, lambda o: o["spec"]["privateKey"].update(algorithm="DSA")),
     "spec.privateKey.algorithm: 'DSA' is not one of"),
    ("cert-missing-issuerRef", broken(CERTIFICATE, lambda o: o["spec"].pop("issuerRef")),
     "spec: 'issuerRef' is a required property"),
    ("netpol-policyTypes-Sideways", broken(NETWORK_POLICY, lambda o: o["spec"].update(policyTypes=["Sideways"])),
     "spec.policyTypes[0]: 'Sideways' is not one of ['Ingress', 'Egress']"),
    ("netpol-port-as-list", broken(NETWORK_POLICY, lambda o: o["spec"]["ingress"][0]["ports"][0].update(port=[8200])),
     "spec.ingress[0].ports[0].port: [8200]"),
    ("netpol-typo", broken(NETWORK_POLICY, lambda o: o["spec"].update(podSelecter={})),
     "'podSelecter' was unexpected"),
    ("role-rule-missing-verbs", broken(ROLE, lambda o: o["rules"][0].pop("verbs")),
     "rules[0]: 'verbs' is a required property"),
    ("rolebinding-missing-roleRef", broken(ROLE_BINDING, lambda o: o.pop("roleRef")),
     "'roleRef' is a required property"),
    ("unknown-kind", {"apiVersion": "foo.example.com/v1", "kind": "Bar", "metadata": {"name": "x"}},
     "no schema for foo.example.com/v1/Bar"),
    ("unknown-core-kind", {"apiVersion": "v1", "kind": "Secrets", "metadata": {"name": "x"}},
     "no schema for v1/Secrets"),
    ("namespace-without-name", broken(NAMESPACE, lambda o: o["metadata"].pop("name")), "metadata.name: missing"),
    ("namespace-name-not-dns-label", broken(NAMESPACE, lambda o: o["metadata"].update(name="Apps.Prod")),
     "metadata.name: 'Apps.Prod' is not a DNS-1123 label"),
    ("es-name-not-dns-subdomain", broken(EXTERNAL_SECRET, lambda o: o["metadata"].update(name="app_db")),
     "metadata.name: 'app_db' is not a DNS-1123 subdomain"),
    ("label-value-too-long", broken(NAMESPACE, lambda o: o["metadata"]["labels"].update(team="x" * 64)),
     "is not a valid label value"),
    ("no-kind", {"apiVersion": "v1", "metadata": {"name": "x"}}, "apiVersion and kind must be non-empty strings"),
    ("not-a-mapping", ["apiVersion", "v1"], "not a mapping"),
]


@pytest.mark.parametrize("obj", VALID.values(), ids=VALID.keys())
def test_valid_objects_pass(obj):
    assert k8s_spec.validate(obj) == []


@pytest.mark.parametrize("obj, expected", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_objects_fail_naming_the_problem(obj, expected):
    errors = k8s_spec.validate(obj)
    assert any(expected in message for message in errors), errors


def test_strict_mode_is_what_catches_a_typo():
    """Non-strict validation is what the API server does: it prunes the typo, so the object "passes"."""
    typo = broken(EXTERNAL_SECRET, lambda o: o["spec"].update(refreshIntervall="1h"))
    assert k8s_spec.validate(typo, strict=False) == []
    assert k8s_spec.validate(typo) != []


def test_preserve_unknown_fields_is_honoured():
    """VaultDynamicSecret.spec.parameters is free-form upstream (x-kubernetes-preserve-unknown-fields)."""
    obj = broken(VAULT_DYNAMIC_SECRET, lambda o: o["spec"].update(parameters={"anything": {"goes": [1, 2]}}))
    assert k8s_spec.validate(obj) == []


def test_validate_all_keys_only_failing_objects():
    no_name = broken(NAMESPACE, lambda o: o["metadata"].pop("name"))
    no_verbs = broken(ROLE, lambda o: o["rules"][0].pop("verbs"))
    unknown = {"apiVersion": "foo.example.com/v1", "kind": "Bar", "metadata": {"name": "b", "namespace": "apps"}}
    objects = [NAMESPACE, EXTERNAL_SECRET, no_verbs, no_name, SERVICE_ACCOUNT, unknown, SERVICE_ACCOUNT]
    failures = k8s_spec.validate_all(objects)
    assert sorted(failures) == ["foo.example.com/v1/Bar apps/b", "rbac.authorization.k8s.io/v1/Role apps/eso-reader",
                                "v1/Namespace <unnamed #3>", "v1/ServiceAccount apps/app #6"]
    assert any("verbs" in m for m in failures["rbac.authorization.k8s.io/v1/Role apps/eso-reader"])
    assert failures["v1/ServiceAccount apps/app #6"] == [
        "duplicate object: the same apiVersion/kind/namespace/name appears earlier"]
    assert k8s_spec.validate_all([NAMESPACE, CERTIFICATE, OPENBAO_STORE]) == {}


def test_stored_crds_name_their_source_and_keep_only_served_versions():
    """The CRD files are test data pinned to upstream: each says where it came from (README.md: how to refresh)."""
    files = sorted(glob.glob(os.path.join(k8s_spec.CRD_DIR, "*.yaml")))
    assert len(files) == 8
    for path in files:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for field in ("# Source: https://github.com/", "# Path: ", "# Version: tag v"):
            assert field in text.split("apiVersion:", 1)[0], (path, field)
        crd = [d for d in yaml.safe_load_all(text) if d][0]
        assert all(v["served"] for v in crd["spec"]["versions"]), path
    assert sorted(k8s_spec.crd_schemas()) == [
        ("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "ClusterIssuer"),
        ("external-secrets.io/v1", "ClusterSecretStore"),
        ("external-secrets.io/v1", "ExternalSecret"), ("external-secrets.io/v1", "SecretStore"),
        ("generators.external-secrets.io/v1alpha1", "VaultDynamicSecret"),
        ("monitoring.coreos.com/v1", "PrometheusRule"), ("trust.cert-manager.io/v1alpha1", "Bundle")]


def test_checkov_skips_file_loads_and_refuses_a_skip_without_reason(tmp_path):
    assert isinstance(k8s_spec.load_checkov_skips(), list)
    bad = tmp_path / "skips.yml"
    bad.write_text("- {id: CKV_K8S_16}\n")
    with pytest.raises(ValueError, match="no reason"):
        k8s_spec.load_checkov_skips(str(bad))


BAD_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: apps}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: app
          image: nginx:1.27
          securityContext: {privileged: true}
"""

HARDENED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hardened, namespace: apps}
spec:
  selector: {matchLabels: {app: hardened}}
  template:
    metadata: {labels: {app: hardened}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
          imagePullPolicy: Always
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {cpu: 200m, memory: 128Mi}
          securityContext:
            privileged: false
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"""

# privileged, CPU/memory requests and limits, privilege escalation, read-only root filesystem, NET_RAW/ALL caps
POSTURE_CHECKS = {"CKV_K8S_16", "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_20", "CKV_K8S_22",
                  "CKV_K8S_28"}


def test_checkov_reports_failed_checks_by_id_and_passes_hardened_ones(tmp_path):
    """Not skipped when checkov is missing: `make test` installs .venv-checkov, so absence is a set-up error."""
    (tmp_path / "bad.yaml").write_text(BAD_DEPLOYMENT)
    (tmp_path / "hardened.yaml").write_text(HARDENED_DEPLOYMENT)
    result = k8s_spec.run_checkov(str(tmp_path))
    assert result["parsing_errors"] == []
    failed = k8s_spec.checks_by_id(result["failed"])
    passed = k8s_spec.checks_by_id(result["passed"])
    assert failed["CKV_K8S_16"] == ["Deployment.apps.bad"]  # Do not admit privileged containers
    for check_id in POSTURE_CHECKS:
        assert "Deployment.apps.bad" in failed.get(check_id, []), (check_id, failed)
        assert "Deployment.apps.hardened" in passed.get(check_id, []), (check_id, passed)
        assert "Deployment.apps.hardened" not in failed.get(check_id, []), check_id
    bad = [c for c in result["failed"] if c["check_id"] == "CKV_K8S_16"][0]
    assert bad["file"] == "bad.yaml" and bad["check_name"]


def test_checkov_skips_move_matching_failures_with_their_reason(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD_DEPLOYMENT)
    skips = [{"id": "CKV_K8S_16", "resources": ["Deployment.apps.b*"], "reason": "test"},
             {"id": "CKV_K8S_10", "kinds": ["StatefulSet"], "reason": "other kind: does not match"}]
    result = k8s_spec.run_checkov(str(tmp_path), skips=skips)
    assert "CKV_K8S_16" not in k8s_spec.checks_by_id(result["failed"])
    assert [c["reason"] for c in result["skipped"] if c["check_id"] == "CKV_K8S_16"] == ["test"]
    assert "Deployment.apps.bad" in k8s_spec.checks_by_id(result["failed"])["CKV_K8S_10"]
