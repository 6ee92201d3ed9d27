#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eso_force_sync
short_description: Make External Secrets Operator sync ExternalSecrets now (force-sync annotation)
version_added: "0.1.0"
description:
  - Sets the annotation O(annotation) (C(force-sync)) to the current unix time on each ExternalSecret in
    O(external_secrets), with a merge patch through the C(kubernetes) Python client. ESO reconciles an ExternalSecret
    whose annotations change, so it reads Vault again without waiting for C(refreshInterval); this is what
    C(kubectl annotate externalsecret <name> force-sync=$(date +%s) --overwrite) does.
  - Idempotent within O(min_interval) -- an ExternalSecret whose annotation is younger is left alone
    (C(changed=false)), so a rerun does not make ESO hammer Vault.
  - Every ExternalSecret is read first; if one does not exist the task fails before anything is annotated.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.eso_status_info
  - module: heracles.secrets.vault_eso_check
requirements:
  - kubernetes (Python client)
attributes:
  check_mode:
    support: full
    description: Reads each ExternalSecret and reports which would be annotated; patches nothing.
  diff_mode:
    support: full
    description: Shows the annotation value before and after for each ExternalSecret.
extends_documentation_fragment:
  - heracles.secrets.kubernetes
  - heracles.secrets.eso_kube
options:
  external_secrets:
    description: ExternalSecrets to sync, each as C(namespace/name).
    type: list
    elements: str
    required: true
  min_interval:
    description:
      - Do not annotate an ExternalSecret whose annotation was set less than this long ago (seconds or a duration such
        as C(5m)). V(0) always annotates.
    type: str
    default: 5m
  annotation:
    description: The annotation to set.
    type: str
    default: force-sync
"""

EXAMPLES = r"""
- name: Sync two ExternalSecrets now
  heracles.secrets.eso_force_sync:
    external_secrets:
      - payments/payments-db
      - orders/orders-db

- name: Sync every ExternalSecret that is not Ready
  heracles.secrets.eso_force_sync:
    external_secrets: "{{ eso.failing }}"
    min_interval: 10m
  when: eso.failing | length > 0
"""

RETURN = r"""
results:
  description: One entry per ExternalSecret.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: payments/payments-db
      namespace: payments
      name: payments-db
      changed: true
      reason: last force-sync 3600s ago
      before: "1767225600"
      after: "1767229200"
synced:
  description: C(namespace/name) of the ExternalSecrets annotated (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [payments/payments-db]
left_alone:
  description:
    - C(namespace/name) of those left alone because of O(min_interval).
    - Named so, not C(skipped), because Ansible reads a true C(skipped) in a result as a skipped task (and then
      ignores C(changed_when)/C(failed_when)).
  returned: always
  type: list
  elements: str
  sample: []
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            external_secrets=dict(type="list", elements="str", required=True, no_log=False),
            min_interval=dict(type="str", default="5m"),
            annotation=dict(type="str", default="force-sync"),
            **eso_kube.KUBE_SPEC
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        min_interval = parse_duration(p["min_interval"])
    except ValueError as exc:
        module.fail_json(msg="min_interval: %s" % exc)
    if not p["annotation"]:
        module.fail_json(msg="annotation must not be empty")
    if not p["external_secrets"]:
        module.exit_json(changed=False, results=[], synced=[], left_alone=[])
    if not eso_kube.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    try:
        for target in p["external_secrets"]:
            eso_kube.parse_target(target)
        api = eso_kube.custom_objects_api(p["kubeconfig"], p["context"])
        results = eso_kube.force_sync(api, p["api_version"], p["external_secrets"], int(time.time()), min_interval,
                                      module.check_mode, annotation=p["annotation"])
    except eso_kube.KubeError as exc:
        done = getattr(exc, "results", [])
        synced = [r["ref"] for r in done if r["changed"]]
        module.fail_json(msg="%s (annotated before the failure: %s)" % (exc, ", ".join(synced) or "none"),
                         changed=bool(synced), results=done, synced=synced, exception=traceback.format_exc())
    out = dict(changed=any(r["changed"] for r in results), results=results,
               synced=[r["ref"] for r in results if r["changed"]], left_alone=[r["ref"] for r in results if not r["changed"]])
    if module._diff:
        out["diff"] = dict(before=dict((r["ref"], r["before"]) for r in results),
                           after=dict((r["ref"], r["after"]) for r in results))
    module.exit_json(**out)


def main():
    run_module()


if __name__ == "__main__":
    main()
