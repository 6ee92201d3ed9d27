#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: k8s_secrets_reencrypt
short_description: Re-encrypt existing Kubernetes Secrets with the current KMS key by writing them back unchanged
version_added: "0.1.0"
description:
  - "Does what the Kubernetes documentation prescribes after encryption is enabled or the key changes
    (C(kubectl get secrets --all-namespaces -o json | kubectl replace -f -)), through the Kubernetes API: each Secret
    is written back unchanged with C(PUT) and its C(resourceVersion). The API server stores it again through the
    first provider of its encryption configuration, so it ends up encrypted with the current key. Nothing about the
    Secret changes but its C(resourceVersion) (and that only when the stored bytes were stale)."
  - "A C(409 Conflict) (someone wrote the Secret after it was read) re-reads it and tries again, up to O(retries)
    times; a Secret deleted meanwhile is skipped (reported in RV(gone)). Other per-Secret failures are collected
    and the task fails at the end with the list; the Secrets rewritten before stay rewritten (unchanged content)."
  - "Which Secrets are rewritten:"
  - "Self-managed (O(etcd_endpoints)): only those whose stored value in etcd is not on target (not KMS v2, or another
    O(kms_provider_name)/O(kms_v2_key_id)). Afterwards etcd is read again, and the task fails if a rewritten Secret
    is still not on target (an API server without the KMS v2 provider first). A rerun rewrites nothing."
  - "EKS (O(cluster_name), no etcd access): every Secret, when the re-encryption marker (a ConfigMap,
    O(marker_namespace)/O(marker_name)) is missing or records another key ARN than the cluster's
    C(encryptionConfig). EKS never changes or removes a cluster's Secrets key once associated, so a marker with the
    current key ARN means every Secret was rewritten after encryption was enabled. The marker is written after a
    complete run over all namespaces without failures. A rerun rewrites nothing."
  - "O(force=true) rewrites every Secret (of O(namespaces)) whatever the above says, for example after a KMS v2 key
    change on a self-managed cluster when O(kms_v2_key_id) is not known."
  - No Secret value is ever logged, returned or put into an error message.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.k8s_secrets_encryption_info
  - name: Ensure all Secrets are encrypted (Kubernetes)
    description: The documented re-encryption, kubectl get secrets -A -o json | kubectl replace -f -.
    link: https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/#ensure-all-secrets-are-encrypted
extends_documentation_fragment:
  - heracles.secrets.envelope_encryption
  - heracles.secrets.envelope_encryption.AWS
  - heracles.secrets.kubernetes
attributes:
  check_mode:
    support: full
    description:
      - Reads etcd (self-managed) or the EKS encryption config, the marker and the list of Secrets (EKS, force),
        and reports how many Secrets would be rewritten and whether the marker would be written. Writes nothing.
  diff_mode:
    support: full
    description:
      - Self-managed, per rewritten Secret, the stored value's prefix before (for example C(k8s\\x00 (plain protobuf)))
        and the target after; EKS, the marker before and after. Never a value.
options:
  namespaces:
    description:
      - Only the Secrets of these namespaces. Empty means all namespaces. On EKS a run limited to namespaces does
        not write the marker.
    type: list
    elements: str
    default: []
  force:
    description: Rewrite every Secret (of O(namespaces)), not only those that need it.
    type: bool
    default: false
  retries:
    description: Retries per Secret after a conflict (409), a throttle (429), a server error (5xx) or a dropped connection.
    type: int
    default: 5
  page_size:
    description: Secrets per list request (EKS, force).
    type: int
    default: 500
  marker_namespace:
    description: Namespace of the EKS re-encryption marker ConfigMap.
    type: str
    default: kube-system
  marker_name:
    description: Name of the EKS re-encryption marker ConfigMap.
    type: str
    default: heracles-secrets-reencrypted
notes:
  - O(etcd_endpoints) and O(cluster_name) exclude each other. Without either, only O(force=true) says what to do.
  - With O(kms_key) on EKS, the cluster's key must be that key and the key must be Enabled, else nothing is rewritten.
  - The identity in the kubeconfig needs list, get and update on Secrets in all namespaces, and get, create and
    update on the marker ConfigMap (EKS).
  - Writing a Secret back creates no event for its consumers (the data is the same); ESO does not react either.
"""

EXAMPLES = r"""
- name: Self-managed - rewrite the Secrets etcd shows are not on the KMS v2 provider
  heracles.secrets.k8s_secrets_reencrypt:
    etcd_endpoints: [https://10.0.0.10:2379]
    etcd_ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    etcd_client_cert: /etc/kubernetes/pki/apiserver-etcd-client.crt
    etcd_client_key: /etc/kubernetes/pki/apiserver-etcd-client.key
    kms_provider_name: heracles-prod-kms

- name: EKS - rewrite every Secret once after encryption was associated (marker in kube-system)
  heracles.secrets.k8s_secrets_reencrypt:
    cluster_name: heracles-prod
    aws_region: ap-northeast-1
    kms_key: alias/heracles-prod-k8s-secrets
    kubeconfig: ~/.kube/heracles-prod

- name: Rewrite every Secret of one namespace, whatever the state
  heracles.secrets.k8s_secrets_reencrypt:
    namespaces: [payments]
    force: true
"""

RETURN = r"""
mode:
  description: How Secrets were selected, V(etcd), V(eks) or V(force).
  returned: always
  type: str
  sample: etcd
reason:
  description: Why these Secrets (or none) were rewritten.
  returned: always
  type: str
  sample: 2 of 3 Secrets in etcd are not written by KMS v2 provider heracles-prod-kms
selected:
  description: Secrets chosen for a rewrite.
  returned: always
  type: int
  sample: 2
rewritten:
  description: Secrets written back (in check mode, that would be).
  returned: always
  type: int
  sample: 2
left_alone:
  description: Secrets not rewritten because etcd shows them on target (self-managed).
  returned: always
  type: int
  sample: 1
conflicts:
  description: Conflicts (409) met and retried.
  returned: always
  type: int
  sample: 1
gone:
  description: C(namespace/name) of Secrets deleted between the read and the write (nothing to re-encrypt).
  returned: always
  type: list
  elements: str
  sample: []
failed:
  description: Secrets that could not be rewritten, each with the error (never Secret data).
  returned: always
  type: list
  elements: dict
  sample: [{secret: payments/db, error: "Rewriting Secret payments/db: forbidden (403 Forbidden: ...)"}]
namespaces:
  description: Per namespace, Secrets selected, rewritten, gone and failed.
  returned: always
  type: dict
  sample: {orders: {selected: 2, rewritten: 2, gone: 0, failed: 0, conflicts: 1}}
still_not_on_target:
  description: Self-managed, rewritten Secrets that etcd still shows off target afterwards (the task fails then).
  returned: when etcd_endpoints is given and Secrets were rewritten (not in check mode)
  type: list
  elements: dict
marker:
  description: EKS, the marker ConfigMap's data before and after, and whether it was (or would be) written.
  returned: when cluster_name is given
  type: dict
  sample:
    namespace: kube-system
    name: heracles-secrets-reencrypted
    written: true
    before: null
    after: {cluster: heracles-prod, keyArn: "arn:aws:kms:...:key/1f0e...", reencryptedAt: "2026-12-01T10:00:00Z", secrets: "42"}
report:
  description: The run as readable lines, for a debug task.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.heracles.secrets.plugins.module_utils import (
    envelope, envelope_aws, eso_kube, etcd_v3, secrets_kube)
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, join_hint


class Run:
    """Counts of one run, per namespace."""

    def __init__(self):
        self.selected = 0
        self.rewritten = 0
        self.conflicts = 0
        self.gone = []
        self.failed = []
        self.done = set()
        self.namespaces = {}

    def _ns(self, namespace):
        return self.namespaces.setdefault(namespace, dict(selected=0, rewritten=0, gone=0, failed=0, conflicts=0))

    def select(self, namespace):
        self.selected += 1
        self._ns(namespace)["selected"] += 1

    def record(self, namespace, name, outcome, conflicts=0, error=None):
        ref = "%s/%s" % (namespace, name)
        per_ns = self._ns(namespace)
        self.conflicts += conflicts
        per_ns["conflicts"] += conflicts
        if outcome == "rewritten":
            self.rewritten += 1
            per_ns["rewritten"] += 1
            self.done.add(ref)
        elif outcome == "gone":
            self.gone.append(ref)
            per_ns["gone"] += 1
        else:
            self.failed.append(dict(secret=ref, error=error))
            per_ns["failed"] += 1

    def lines(self, check_mode):
        verb = "would rewrite" if check_mode else "rewritten"
        out = ["%s: %d of %d selected (%d conflict(s) retried, %d gone, %d failed)" % (
            verb, self.rewritten, self.selected, self.conflicts, len(self.gone), len(self.failed))]
        for namespace, counts in sorted(self.namespaces.items()):
            out.append("  %-30s selected %d, %s %d, gone %d, failed %d" % (
                namespace, counts["selected"], verb, counts["rewritten"], counts["gone"], counts["failed"]))
        for item in self.failed[:10]:
            out.append("  FAILED %s" % item["error"])
        return out


def split_ref(ref):
    namespace, _sep, name = ref.partition("/")
    return namespace, name


def rewrite(module, core, run, namespace, name, obj=None):
    run.select(namespace)
    if module.check_mode:
        run.record(namespace, name, "rewritten")
        return
    try:
        outcome, conflicts = secrets_kube.rewrite_secret(core, namespace, name, obj, retries=module.params["retries"])
        run.record(namespace, name, outcome, conflicts)
    except secrets_kube.KubeError as exc:
        run.record(namespace, name, "failed", error=join_hint(exc.message, exc.hint))
        if "not authenticated" in exc.message:  # every further call fails alike
            raise


def module_spec():
    spec = dict(
        namespaces=dict(type="list", elements="str", default=[]),
        force=dict(type="bool", default=False),
        retries=dict(type="int", default=secrets_kube.DEFAULT_RETRIES),
        page_size=dict(type="int", default=secrets_kube.DEFAULT_PAGE_SIZE),
        marker_namespace=dict(type="str", default="kube-system"),
        marker_name=dict(type="str", default="heracles-secrets-reencrypted"),
    )
    spec.update(etcd_v3.ETCD_SPEC)
    spec.update(envelope.TARGET_SPEC)
    spec.update(envelope_aws.AWS_SPEC)
    spec.update(secrets_kube.KUBE_SPEC)
    return spec


def finish(module, run, result, diff, fail_msg=None):
    """Exit with the counts of ``run`` (fail with ``fail_msg`` when given)."""
    result.update(selected=run.selected, rewritten=run.rewritten, conflicts=run.conflicts, gone=run.gone,
                  failed=run.failed, namespaces=run.namespaces)
    result["changed"] = bool(run.rewritten) or bool((result.get("marker") or {}).get("written"))
    if module._diff:
        result["diff"] = diff
    if fail_msg:
        module.fail_json(msg=fail_msg, **result)
    module.exit_json(**result)


def check_input(module):
    """(namespaces, target provider, etcd gateway or None); raises EnvelopeError before anything is read."""
    p = module.params
    namespaces = envelope.check_namespaces(p["namespaces"])
    target = envelope.Target(p["kms_provider_name"], p["kms_v2_key_id"])
    if p["retries"] < 0 or p["page_size"] < 1:
        raise envelope.EnvelopeError("retries must be >= 0 and page_size >= 1", "Use the defaults (5 and 500)")
    if not (p["etcd_endpoints"] or p["cluster_name"] or p["force"]):
        raise envelope.EnvelopeError(
            "Nothing says which Secrets need a rewrite",
            "Give etcd_endpoints (self-managed: rewrite what etcd shows is not on KMS v2), cluster_name (EKS: rewrite "
            "all once per key, recorded in a marker ConfigMap) or force=true (rewrite every Secret); nothing was "
            "written")
    gateway = None
    if p["etcd_endpoints"]:
        gateway = etcd_v3.EtcdGateway(p["etcd_endpoints"], p["etcd_ca_cert"], p["etcd_client_cert"],
                                      p["etcd_client_key"], p["etcd_api_prefix"], p["etcd_timeout"])
    if not eso_kube.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), changed=False)
    return namespaces, target, gateway


def plan_eks(module, result):
    """EKS mode: (API client, whether every Secret is rewritten, the marker ConfigMap as read)."""
    p = module.params
    result["mode"] = "eks"
    key_arn = eks_key_arn(module)
    core = secrets_kube.core_api(p["kubeconfig"], p["context"])
    before, version = secrets_kube.read_marker(core, p["marker_namespace"], p["marker_name"])
    rewrite_all, result["reason"] = envelope.marker_decision(before, key_arn, p["force"])
    marker = dict(namespace=p["marker_namespace"], name=p["marker_name"], written=False, before=before,
                  after=before, version=version, key_arn=key_arn)
    return core, rewrite_all, marker


def rewrite_off_target(module, run, result, diff, gateway, target, namespaces):
    """etcd mode: rewrite the Secrets etcd shows are not written by ``target``, then read etcd again to prove it."""
    p = module.params
    result["mode"] = "etcd"
    scan = envelope.scan_secrets(gateway, p["etcd_prefix"], target, namespaces, p["etcd_page_size"])
    result["report"] += scan.summary_lines()
    result["left_alone"] = scan.on_target
    result["reason"] = "%d of %d Secrets in etcd are not written by %s" % (
        len(scan.off_target), scan.total, target.describe())
    core = secrets_kube.core_api(p["kubeconfig"], p["context"]) if scan.off_target else None
    for item in scan.off_target:
        rewrite(module, core, run, item["namespace"], item["name"])
        if item["secret"] in run.done:
            diff["before"][item["secret"]] = item["prefix"]
            diff["after"][item["secret"]] = target.prefix
    if run.done and not module.check_mode:
        after = envelope.scan_secrets(gateway, p["etcd_prefix"], target, namespaces, p["etcd_page_size"])
        still = [item for item in after.result()["secrets_not_on_target"] if item["secret"] in run.done]
        result["still_not_on_target"] = still
        result["report"].append("etcd after the rewrite: %d of %d rewritten Secret(s) still not on %s"
                                % (len(still), len(run.done), target.describe()))
        if still:
            result["report"] += run.lines(module.check_mode)
            finish(module, run, result, diff,
                   "%d rewritten Secret(s) are still not written by %s in etcd: %s. An API server writes them "
                   "with another provider: make the kms v2 provider the first provider of the "
                   "EncryptionConfiguration on every API server, restart them, and rerun" % (
                       len(still), target.describe(), envelope.quote_refs([s["secret"] for s in still])))


def rewrite_all_secrets(module, core, run, namespaces):
    """Rewrite every Secret of ``namespaces`` (all namespaces when empty), page by page."""
    for ns in namespaces or [None]:
        for obj in secrets_kube.list_secrets(core, ns, module.params["page_size"]):
            meta = obj.get("metadata") or {}
            rewrite(module, core, run, meta.get("namespace"), meta.get("name"), obj)


def update_marker(module, core, run, marker, namespaces, rewrite_all, result, diff):
    """EKS mode: record the key and the time in the marker after a complete rewrite of every namespace."""
    p = module.params
    result["marker"] = marker
    if rewrite_all and not namespaces and not run.failed:
        marker["after"] = dict(cluster=p["cluster_name"], keyArn=marker["key_arn"],
                               reencryptedAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               secrets=str(run.rewritten))
        marker["written"] = True
        if not module.check_mode:
            secrets_kube.write_marker(core, p["marker_namespace"], p["marker_name"], marker["after"],
                                      marker["version"])
    diff["before"]["marker"], diff["after"]["marker"] = marker["before"], marker["after"]
    del marker["version"], marker["key_arn"]


def final_report(module, run, result, marker):
    result["report"].insert(0, "mode %s: %s" % (result["mode"], result["reason"]))
    result["report"] += run.lines(module.check_mode)
    if marker is not None:
        result["report"].append("marker %s/%s: %s" % (
            marker["namespace"], marker["name"],
            ("would be written" if module.check_mode else "written") + " (keyArn %s)" % marker["after"]["keyArn"]
            if marker["written"] else "unchanged"))


def run_module():
    module = AnsibleModule(argument_spec=module_spec(), supports_check_mode=True,
                           mutually_exclusive=[("etcd_endpoints", "cluster_name")])
    p = module.params
    run = Run()
    result = dict(changed=False, mode=None, reason="", selected=0, rewritten=0, left_alone=0, conflicts=0, gone=[],
                  failed=[], namespaces={}, report=[])
    diff = dict(before={}, after={})
    marker = None
    try:
        namespaces, target, gateway = check_input(module)
        if p["cluster_name"]:
            core, rewrite_all, marker = plan_eks(module, result)
        elif p["force"]:
            result["mode"], result["reason"], rewrite_all = "force", "force=true", True
            core = secrets_kube.core_api(p["kubeconfig"], p["context"])
        else:
            core, rewrite_all = None, False
            rewrite_off_target(module, run, result, diff, gateway, target, namespaces)
        if rewrite_all:
            rewrite_all_secrets(module, core, run, namespaces)
        if marker is not None:
            update_marker(module, core, run, marker, namespaces, rewrite_all, result, diff)
    except HeraclesError as exc:
        result["report"] += run.lines(module.check_mode)
        finish(module, run, result, diff, join_hint(exc.message, exc.hint))

    final_report(module, run, result, marker)
    if run.failed:
        finish(module, run, result, diff,
               "%d of %d Secret(s) could not be rewritten: %s. Fix the cause and rerun (Secrets already rewritten are "
               "not rewritten again)" % (len(run.failed), run.selected, "; ".join(item["error"] for item in run.failed[:5])))
    finish(module, run, result, diff)


def eks_key_arn(module):
    """The cluster's Secrets key ARN; fails unless the cluster is ACTIVE, encrypts Secrets and (with kms_key) uses
    the stack's key, Enabled."""
    p = module.params
    eks, kms = envelope_aws.clients(p["aws_region"], p["aws_endpoint_url"])
    cluster = envelope_aws.describe_cluster(eks, p["cluster_name"], p["aws_region"])
    key_arn = envelope_aws.cluster_key_arn(cluster)
    if not key_arn:
        expected = envelope_aws.describe_key(kms, p["kms_key"], p["aws_region"])["Arn"] if p["kms_key"] else "<key ARN>"
        raise envelope.EnvelopeError(
            "EKS cluster %s does not encrypt Secrets with a KMS key (no encryptionConfig for resources [secrets]): "
            "rewriting them would not encrypt anything" % p["cluster_name"],
            "Associate the stack's key first: %s; wait for aws eks wait cluster-active, then rerun"
            % envelope_aws.associate_command(p["cluster_name"], p["aws_region"], expected))
    if cluster.get("status") not in (None, "ACTIVE"):
        raise envelope.EnvelopeError(
            "EKS cluster %s is %s: an encryption update may still be rolling out to its API servers"
            % (p["cluster_name"], cluster.get("status")),
            "Wait (aws eks wait cluster-active --name %s) and rerun; nothing was written" % p["cluster_name"])
    if p["kms_key"]:
        facts, findings = envelope_aws.check_eks(eks, kms, p["cluster_name"], p["aws_region"], p["kms_key"],
                                                 require_rotation=False)
        if findings:
            raise envelope.EnvelopeError(
                "Not re-encrypting: %s" % "; ".join(f["message"] for f in findings),
                " ".join(f["hint"] for f in findings) + "; nothing was written")
    return key_arn


def main():
    run_module()


if __name__ == "__main__":
    main()
