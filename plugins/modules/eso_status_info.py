#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eso_status_info
short_description: Diagnose External Secrets Operator ExternalSecrets that are not Ready
version_added: "0.1.0"
description:
  - Lists ExternalSecrets, SecretStores and ClusterSecretStores (C(external-secrets.io)) through the Kubernetes API with
    the C(kubernetes) Python client, or takes recorded objects (O(objects), O(objects_file)) for offline analysis.
  - "For every ExternalSecret it reports whether it is Ready and why not (its C(Ready) condition, with the status
    message explained: permission denied, secret not found, wrong role, audience, TLS, unreachable Vault, store
    missing or not Ready, namespace not allowed by a ClusterSecretStore), which store it uses, the store's Vault server,
    KV path and version and Kubernetes auth (mount, role, service account, audiences), and the Vault paths ESO reads for
    each C(data[]) and C(dataFrom[]) entry, built the way ESO's Vault provider builds them."
  - "Findings also cover the spec: C(apiVersion) C(external-secrets.io/v1beta1) (no longer served by ESO 0.17 and later),
    a KV v2 store path ending in C(/data) or a key starting with C(data/) (ESO adds C(data/) itself), C(mountPath) with
    an C(auth/) prefix, conflicting C(creationPolicy)/C(deletionPolicy), a disabled or very short C(refreshInterval), and
    a refresh older than twice its interval."
  - The ExternalSecrets that are not Ready are grouped into RV(vault_checks), the input of
    M(heracles.secrets.vault_eso_check).
  - Never reads a Kubernetes Secret or a Vault value.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_eso_check
  - module: heracles.secrets.eso_force_sync
  - name: External Secrets Operator API
    description: ExternalSecret, SecretStore and ClusterSecretStore fields.
    link: https://external-secrets.io/latest/api/spec/
requirements:
  - kubernetes (Python client), only when reading from the Kubernetes API
extends_documentation_fragment:
  - heracles.secrets.kubernetes
  - heracles.secrets.eso_kube
  - heracles.secrets.attributes.info_module
options:
  objects:
    description:
      - Recorded API objects (ExternalSecrets, SecretStores, ClusterSecretStores, or C(List) objects holding them, as
        C(kubectl get -o yaml) prints). When set, the Kubernetes API is not called.
    type: list
    elements: dict
  objects_file:
    description:
      - YAML or JSON file (several documents allowed) with such objects, for example the output of
        C(kubectl get externalsecrets,secretstores,clustersecretstores -A -o yaml).
    type: path
  namespace:
    description: Only ExternalSecrets (and SecretStores) of this namespace; every namespace when not set.
    type: str
  names:
    description: Only these ExternalSecrets, as C(name) or C(namespace/name).
    type: list
    elements: str
  controller_service_account:
    description:
      - C(namespace/name) of ESO's own service account. ESO presents its pod's token when a store's Kubernetes auth has
        neither C(serviceAccountRef) nor C(secretRef).
    type: str
    default: external-secrets/external-secrets
"""

EXAMPLES = r"""
- name: Every ExternalSecret in the cluster of the current kubeconfig context
  heracles.secrets.eso_status_info:
  register: eso

- name: One namespace of another cluster
  heracles.secrets.eso_status_info:
    kubeconfig: ~/.kube/prod
    context: prod-admin
    namespace: payments

- name: Offline, from a file recorded with kubectl get externalsecrets,secretstores,clustersecretstores -A -o yaml
  heracles.secrets.eso_status_info:
    objects_file: /tmp/eso-objects.yaml
  register: eso

- name: Print the report
  ansible.builtin.debug:
    msg: "{{ eso.report }}"
"""

RETURN = r"""
source:
  description: Where the objects came from (C(kubernetes), C(objects) or C(objects_file:<path>)).
  returned: always
  type: str
  sample: kubernetes
summary:
  description: Counts.
  returned: always
  type: dict
  sample: {total: 3, ready: 1, not_ready: 2, unknown: 0, stores: 1, stores_not_ready: 0, errors: 3}
failing:
  description: C(namespace/name) of every ExternalSecret that is not Ready (False, or no Ready condition yet).
  returned: always
  type: list
  elements: str
  sample: [billing/stripe, payments/payments-db]
external_secrets:
  description: One diagnosis per ExternalSecret.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: payments/payments-db
      name: payments-db
      namespace: payments
      api_version: external-secrets.io/v1
      ready: false
      reason: SecretSyncedError
      message: "error processing spec.data[0] (key: apps/payments/db), err: Code: 403. Errors: * permission denied"
      refresh_interval: 1h
      refresh_seconds: 3600.0
      store: {kind: ClusterSecretStore, name: vault-dev, ref: ClusterSecretStore/vault-dev, found: true, ready: true,
              provider: vault}
      target: {name: payments-db, creation_policy: Owner, deletion_policy: Retain, template: false}
      remote_refs:
        - source: data[0]
          kind: get
          secret_key: password
          key: apps/payments/db
          property: password
          vault_paths: [{path: kv-dev/data/apps/payments/db, capability: read}]
      force_sync: null
      vault_check: ClusterSecretStore/vault-dev
      findings:
        - severity: error
          code: vault_permission_denied
          message: "payments/payments-db is not Ready (SecretSyncedError): ... permission denied"
          fix: "Vault refused the read: the role's policies do not grant read on the path (see the Vault check)"
stores:
  description: One entry per SecretStore and ClusterSecretStore, with its Vault provider settings and findings.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: ClusterSecretStore/vault-dev
      kind: ClusterSecretStore
      ready: true
      provider: vault
      vault: {server: "https://vault.vault.svc:8200", path: kv-dev, version: v2, auth_method: kubernetes,
              auth_mount: kubernetes-dev, role: external-secrets, audiences: [vault],
              service_account: {name: external-secrets, namespace: external-secrets}}
      findings: []
      used_by: [payments/payments-db]
vault_checks:
  description: The Vault reads of the failing ExternalSecrets, grouped by store and service account; pass as
    O(heracles.secrets.vault_eso_check#module:checks).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ClusterSecretStore/vault-dev
      store: ClusterSecretStore/vault-dev
      server: https://vault.vault.svc:8200
      auth_mount: kubernetes-dev
      role: external-secrets
      service_account_namespace: external-secrets
      service_account_name: external-secrets
      audiences: [vault]
      kv_mount: kv-dev
      kv_version: v2
      paths: [{path: kv-dev/data/apps/payments/db, capability: read, sources: ["payments/payments-db data[0]"]}]
      external_secrets: [payments/payments-db]
report:
  description: Human-readable lines, for a playbook's debug output.
  returned: always
  type: list
  elements: str
"""

import json
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.heracles.secrets.plugins.module_utils import eso
from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False


def read_objects_file(path):
    """Objects from a YAML (multi-document) or JSON file; raises ValueError with a clear message."""
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise ValueError("Cannot read objects_file %s: %s" % (path, exc.strerror))
    try:
        if text.lstrip().startswith(("{", "[")):
            data = json.loads(text)
            docs = data if isinstance(data, list) else [data]
        else:
            docs = list(yaml.safe_load_all(text))
    except Exception as exc:  # noqa: BLE001 - any parse error
        raise ValueError("objects_file %s is not YAML or JSON: %s" % (path, exc))
    objects = [d for d in docs if isinstance(d, dict)]
    if not objects:
        raise ValueError("objects_file %s holds no Kubernetes objects" % path)
    return objects


def failing_events(module, core, objects):
    """Warning events of the ExternalSecrets that are not Ready: ESO puts the provider's error there."""
    namespaces = sorted(set(eso.meta(o).get("namespace") for o in eso.flatten(objects)
                            if o.get("kind") == "ExternalSecret" and eso.ready_state(o) is not True))
    events = []
    for namespace in namespaces:
        try:
            events += eso_kube.list_external_secret_events(core, namespace)
        except eso_kube.KubeError as exc:
            module.warn("Events not read (%s); the diagnosis has only the Ready conditions" % exc)
            break
    return events


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            objects=dict(type="list", elements="dict"),
            objects_file=dict(type="path"),
            namespace=dict(type="str"),
            names=dict(type="list", elements="str"),
            controller_service_account=dict(type="str", default=eso.DEFAULT_CONTROLLER_SA),
            **eso_kube.KUBE_SPEC
        ),
        mutually_exclusive=[("objects", "objects_file"), ("objects", "kubeconfig"), ("objects_file", "kubeconfig")],
        supports_check_mode=True,
    )
    p = module.params
    if "/" not in p["controller_service_account"]:
        module.fail_json(msg="controller_service_account must be namespace/name, for example external-secrets/external-secrets")
    if p["objects"] is not None:
        objects, source = p["objects"], "objects"
    elif p["objects_file"]:
        if not HAS_YAML:
            module.fail_json(msg=missing_required_lib("PyYAML"))
        try:
            objects = read_objects_file(p["objects_file"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        source = "objects_file:%s" % p["objects_file"]
    else:
        if not eso_kube.HAS_KUBERNETES:
            module.fail_json(msg=missing_required_lib("kubernetes") + " (or give recorded objects: objects/objects_file)")
        try:
            client = eso_kube.api_client(p["kubeconfig"], p["context"])
            objects = eso_kube.list_eso_objects(eso_kube.custom_objects_api(client=client), p["api_version"],
                                                p["namespace"])
        except eso_kube.KubeError as exc:
            module.fail_json(msg=str(exc), exception=traceback.format_exc())
        objects += failing_events(module, eso_kube.core_api(client=client), objects)
        source = "kubernetes"
    namespaces = [p["namespace"]] if p["namespace"] else None
    # Recorded objects are judged at the time they were recorded (their newest timestamp), not now.
    now = time.time() if source == "kubernetes" else eso.latest_time(eso.flatten(objects))
    result = eso.diagnose(objects, now=now, controller_sa=p["controller_service_account"],
                          namespaces=namespaces, names=p["names"])
    module.exit_json(changed=False, source=source, report=eso.report_lines(result), **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
