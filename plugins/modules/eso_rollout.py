#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eso_rollout
short_description: Roll a Vault change out to the pods -- force-sync ExternalSecrets, wait for ESO, restart workloads
version_added: "0.1.0"
description:
  - For the ExternalSecrets in O(external_secrets), whose Vault data changed at O(changed_at) (a rotation, a leak
    response) -- sets the C(force-sync) annotation on each one whose C(status.refreshTime) is older than that change,
    waits until ESO reports it Ready with a refresh after the change (at most O(timeout)), then restarts the
    workloads in O(workloads) that last (re)started before the change, the way C(kubectl rollout restart) does
    (the pod template annotation C(kubectl.kubernetes.io/restartedAt) set to an RFC 3339 time, merge patch).
  - Convergent -- an ExternalSecret refreshed after the change and a workload restarted (or created) after it are
    left alone, so a rerun changes nothing; a run stopped half-way is finished by the next one.
  - Every object is read first; if one does not exist the task fails before anything is changed. If ESO does not
    refresh an ExternalSecret in time the task fails naming it, and no workload is restarted.
  - Secret values are never read -- only ExternalSecret status and workload metadata.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.eso_force_sync
  - module: heracles.secrets.vault_kv_metadata_info
  - plugin: heracles.secrets.vault_consumers
    plugin_type: filter
requirements:
  - kubernetes (Python client)
attributes:
  check_mode:
    support: full
    description: Reads every object and reports which ExternalSecrets would be synced and which workloads restarted;
      patches nothing and does not wait.
  diff_mode:
    support: full
    description: The force-sync annotation of each ExternalSecret and the restartedAt annotation of each workload,
      before and after.
extends_documentation_fragment:
  - heracles.secrets.kubernetes
  - heracles.secrets.eso_kube
options:
  external_secrets:
    description: ExternalSecrets that read the changed Vault secrets, each as C(namespace/name).
    type: list
    elements: str
    required: true
  changed_at:
    description:
      - When the Vault data they read last changed -- one time for all, or a mapping of C(namespace/name) to a time.
        A time is unix seconds or RFC 3339 (V(2026-12-07T03:04:05.123Z); fractions round up).
      - The filter P(heracles.secrets.vault_consumers#filter) returns such a mapping as C(changed_at) from the times
        M(heracles.secrets.vault_kv_metadata_info) returns.
    type: raw
    required: true
  workloads:
    description:
      - Workloads that consume the Secrets of those ExternalSecrets. Each is C({namespace, kind, name, secrets}) with
        C(kind) one of V(Deployment), V(StatefulSet), V(DaemonSet) and C(secrets) the names of the ExternalSecrets
        (in its namespace) it consumes; without C(secrets), every one in O(external_secrets) in its namespace.
      - A workload is restarted when it last (re)started before the newest change among those ExternalSecrets.
    type: list
    elements: dict
    default: []
  timeout:
    description: How long to wait for ESO to refresh the synced ExternalSecrets (seconds or a duration, V(5m)).
    type: str
    default: 5m
  poll_interval:
    description: How often to read their status while waiting.
    type: str
    default: 2s
  annotation:
    description: The force-sync annotation ESO reconciles on.
    type: str
    default: force-sync
notes:
  - ESO's C(refreshTime) has whole seconds; the annotation is set no earlier than the change (waiting up to 2 s),
    so the refresh it triggers is recorded at or after the change and a rerun finds it up to date. A refresh also
    counts when its C(refreshTime) is newer than the one read before the annotation, so a lagging ESO clock does
    not stall the wait.
"""

EXAMPLES = r"""
- name: Roll the rotation of apps/payments/db out to its consumers
  heracles.secrets.eso_rollout:
    external_secrets: [payments/payments-db]
    changed_at: "2026-12-07T03:04:05Z"
    workloads:
      - {namespace: payments, kind: Deployment, name: payments-api, secrets: [payments-db]}
    timeout: 5m

- name: The consumers of what rotated, from the vault/ data
  heracles.secrets.eso_rollout:
    external_secrets: "{{ consumers.external_secrets }}"
    changed_at: "{{ consumers.changed_at }}"
    workloads: "{{ consumers.workloads }}"
    kubeconfig: ~/.kube/dev
  vars:
    consumers: "{{ declared | heracles.secrets.vault_consumers(metadata.changed_at) }}"
"""

RETURN = r"""
external_secrets:
  description: One entry per ExternalSecret, with what was done (V(sync), V(would sync), V(up to date)) and why.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: payments/payments-db
      changed_at: "2026-12-07T03:04:06Z"
      refresh_time: "2026-12-07T03:04:08Z"
      action: synced
      reason: refreshed 2026-12-07T02:10:00Z, before the change at 2026-12-07T03:04:06Z
      before: null
      after: "1796612646"
      waited: 1.4
workloads:
  description: One entry per workload, with what was done (V(restarted), V(would restart), V(up to date)) and why.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: payments/Deployment/payments-api
      namespace: payments
      kind: Deployment
      name: payments-api
      external_secrets: [payments/payments-db]
      changed_at: "2026-12-07T03:04:06Z"
      action: restarted
      reason: (re)started 2026-11-20T08:05:00Z, before the change at 2026-12-07T03:04:06Z
      before: null
      after: "2026-12-07T03:04:10Z"
synced:
  description: C(namespace/name) of the ExternalSecrets force-synced and refreshed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [payments/payments-db]
restarted:
  description: C(namespace/Kind/name) of the workloads restarted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [payments/Deployment/payments-api]
left_alone:
  description: ExternalSecrets and workloads already up to date with the change (not named C(skipped), which
    Ansible would read as a skipped task).
  returned: always
  type: list
  elements: str
  sample: [payments/payments-stripe, payments/Deployment/payments-webhooks]
steps:
  description: What was done, one line per object, in order (for a runbook's report).
  returned: always
  type: list
  elements: str
  sample:
    - "ExternalSecret payments/payments-db: force-synced (force-sync=1796612646; ESO has not recorded a refresh yet)"
    - "ExternalSecret payments/payments-db: ESO refreshed it at 2026-12-07T03:04:08Z, Ready (waited 1.4 s)"
    - "Deployment payments/payments-api: restarted (restartedAt=2026-12-07T03:04:10Z; ...)"
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube, rollout
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration

EMPTY = dict(external_secrets=[], workloads=[], synced=[], restarted=[], left_alone=[], steps=[])


def _diff(result, annotation):
    before, after = {}, {}
    for entry in result["external_secrets"]:
        before[entry["ref"]] = {annotation: entry["before"]}
        after[entry["ref"]] = {annotation: entry["after"] if entry["action"] != "would sync" else "<now>"}
    for entry in result["workloads"]:
        before[entry["ref"]] = {rollout.RESTARTED_AT: entry["before"]}
        after[entry["ref"]] = {rollout.RESTARTED_AT: entry["after"] if entry["action"] != "would restart" else "<now>"}
    return dict(before=before, after=after)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            external_secrets=dict(type="list", elements="str", required=True, no_log=False),
            changed_at=dict(type="raw", required=True),
            workloads=dict(type="list", elements="dict", default=[]),
            timeout=dict(type="str", default="5m"),
            poll_interval=dict(type="str", default="2s"),
            annotation=dict(type="str", default="force-sync"),
            **eso_kube.KUBE_SPEC
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        timeout = parse_duration(p["timeout"])
        poll = parse_duration(p["poll_interval"])
    except ValueError as exc:
        module.fail_json(msg="timeout/poll_interval: %s. Give seconds or a duration such as 30s or 5m" % exc)
    if poll <= 0 or timeout < 0:
        module.fail_json(msg="poll_interval must be more than 0 and timeout not negative. For example timeout=5m, "
                             "poll_interval=2s")
    if not p["annotation"]:
        module.fail_json(msg="annotation must not be empty. Leave the default, force-sync")
    try:
        refs = rollout.external_secret_refs(p["external_secrets"])
        rollout.changed_times(p["changed_at"], refs)
        rollout.workload_plans(p["workloads"], refs)
    except eso_kube.KubeError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc, changed=False)
    if not refs:
        module.exit_json(changed=False, **EMPTY)
    if not eso_kube.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    try:
        api = eso_kube.custom_objects_api(p["kubeconfig"], p["context"])
        result = rollout.rollout(api, p["api_version"], refs, p["changed_at"], p["workloads"], module.check_mode,
                                 timeout, poll, annotation=p["annotation"])
    except eso_kube.KubeError as exc:
        done = getattr(exc, "results", None) or dict(EMPTY)
        changed = bool(done["synced"] or done["restarted"])
        module.fail_json(msg=str(exc), changed=changed, exception=traceback.format_exc(), **done)
    out = dict(result, changed=bool(result["synced"] or result["restarted"]))
    if module._diff:
        out["diff"] = _diff(result, p["annotation"])
    module.exit_json(**out)


def main():
    run_module()


if __name__ == "__main__":
    main()
