#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: k8s_secrets_encryption_info
short_description: Check that Kubernetes Secrets are encrypted at rest with the stack's KMS key (EKS or etcd)
version_added: "0.1.0"
description:
  - "EKS (O(cluster_name)): C(eks:DescribeCluster) must show an C(encryptionConfig) for resources C(secrets) whose
    C(provider.keyArn) is O(kms_key) (both resolved to key ARNs with C(kms:DescribeKey)); that key must be Enabled,
    symmetric, customer-managed and, with O(require_rotation), rotate automatically (C(kms:GetKeyRotationStatus))."
  - "Self-managed (O(etcd_endpoints)): reads every value under C(<etcd_prefix>/secrets/) from etcd (read-only,
    through etcd's JSON gateway) and checks that each starts with the KMS v2 prefix C(k8s:enc:kms:v2:) (and
    O(kms_provider_name), O(kms_v2_key_id) when given). Secrets written by C(aescbc), C(aesgcm), C(secretbox),
    KMS v1 or not encrypted at all (C(identity): plain protobuf C(k8s\\x00) or JSON) are reported by
    namespace/name."
  - With O(kms_key) alone (self-managed, where the KMS plugin holds the key) the key itself is checked.
  - Every problem is a finding with what to do. With O(fail_on_findings=true) (the default) the task fails when
    there is one, and the failure carries the whole report.
  - No Secret value and no stored etcd value is ever returned or printed, only key names, value prefixes up to the
    provider name, KMS v2 key IDs and counts.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.k8s_secrets_reencrypt
  - name: Encrypting Confidential Data at Rest (Kubernetes)
    description: Providers, the value prefixes, and re-encrypting existing Secrets.
    link: https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/
  - name: Default envelope encryption and KMS keys on EKS
    description: encryptionConfig, AssociateEncryptionConfig.
    link: https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html
extends_documentation_fragment:
  - heracles.secrets.envelope_encryption
  - heracles.secrets.envelope_encryption.AWS
attributes:
  check_mode:
    support: full
    description: Only reads (EKS, KMS, etcd); runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
options:
  namespaces:
    description: Check only the Secrets of these namespaces in etcd. Empty checks all.
    type: list
    elements: str
    default: []
  require_rotation:
    description: Require automatic rotation of the KMS key (a finding when it is off).
    type: bool
    default: true
  fail_on_findings:
    description: Fail the task when anything is not as it should be. V(false) returns the findings with C(ok=false).
    type: bool
    default: true
notes:
  - Give O(etcd_endpoints), O(cluster_name) or O(kms_key); O(cluster_name) needs O(kms_key).
  - The etcd read needs a client certificate etcd trusts (on kubeadm clusters the API server's etcd client pair);
    run it from a control-plane node or through a tunnel. It reads the values once, page by page, and keeps only
    their classification.
"""

EXAMPLES = r"""
- name: EKS - Secrets encrypted with the stack's key, key enabled and rotating
  heracles.secrets.k8s_secrets_encryption_info:
    cluster_name: heracles-prod
    aws_region: ap-northeast-1
    kms_key: alias/heracles-prod-k8s-secrets

- name: Self-managed - every Secret in etcd written by the KMS v2 provider
  heracles.secrets.k8s_secrets_encryption_info:
    etcd_endpoints: [https://10.0.0.10:2379, https://10.0.0.11:2379]
    etcd_ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    etcd_client_cert: /etc/kubernetes/pki/apiserver-etcd-client.crt
    etcd_client_key: /etc/kubernetes/pki/apiserver-etcd-client.key
    kms_provider_name: heracles-prod-kms
    kms_key: alias/heracles-prod-k8s-secrets
    fail_on_findings: false
  register: at_rest

- name: Show what is not encrypted
  ansible.builtin.debug:
    var: at_rest.etcd.secrets_not_on_target
  when: not at_rest.ok
"""

RETURN = r"""
ok:
  description: True when there is no finding.
  returned: always
  type: bool
  sample: false
findings:
  description: What is wrong, each with what to do.
  returned: always
  type: list
  elements: dict
  sample:
    - source: eks
      check: key_arn
      message: EKS cluster heracles-prod encrypts Secrets with KMS key arn:aws:kms:...:key/1111, not the stack's key
        arn:aws:kms:...:key/2222 (kms_key alias/heracles-prod-k8s-secrets)
      hint: "EKS cannot change a cluster's Secrets key: ..."
eks:
  description: What DescribeCluster and KMS say (cluster status, encrypted resources, configured and expected key ARNs,
    the key's state, manager, spec and rotation).
  returned: when cluster_name is given
  type: dict
  sample:
    cluster: heracles-prod
    region: ap-northeast-1
    status: ACTIVE
    encrypted_resources: [secrets]
    key_arn: arn:aws:kms:ap-northeast-1:333333333333:key/1f0e...
    key_arn_resolved: arn:aws:kms:ap-northeast-1:333333333333:key/1f0e...
    expected_key: alias/heracles-prod-k8s-secrets
    expected_key_arn: arn:aws:kms:ap-northeast-1:333333333333:key/1f0e...
    key: {state: Enabled, enabled: true, key_manager: CUSTOMER, key_spec: SYMMETRIC_DEFAULT, rotation_enabled: true}
key:
  description: The KMS key's facts when O(kms_key) is checked without O(cluster_name).
  returned: when kms_key is given without cluster_name
  type: dict
etcd:
  description:
    - The scan of etcd. C(by_prefix) counts values by their prefix up to the provider name; C(by_provider) by kind
      of provider; C(kms_v2_key_ids) KMS v2 values by key ID; C(namespaces) totals per namespace;
      C(secrets_not_on_target) lists every Secret that is not (namespace, name, provider, prefix, reason).
  returned: when etcd_endpoints is given
  type: dict
  sample:
    endpoint: https://10.0.0.10:2379
    revision: 81234
    prefix: /registry/secrets/
    target: KMS v2 provider heracles-prod-kms
    total: 3
    on_target: 1
    not_on_target: 2
    by_provider: {kms-v2: 1, aescbc: 1, identity: 1}
    by_prefix: {"k8s:enc:kms:v2:heracles-prod-kms:": 1, "k8s:enc:aescbc:v1:key1:": 1, "k8s\\x00 (plain protobuf)": 1}
    kms_v2_key_ids: {"arn:aws:kms:...:key/1f0e...": 1}
    namespaces: {orders: {total: 2, on_target: 0}, payments: {total: 1, on_target: 1}}
    secrets_not_on_target:
      - {secret: orders/redis, namespace: orders, name: redis, provider: identity,
         prefix: "k8s\\x00 (plain protobuf)", reason: "written by identity (NOT encrypted), not KMS v2"}
    other_keys: 0
report:
  description: The same as readable lines, for a debug task.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.heracles.secrets.plugins.module_utils import envelope, envelope_aws, etcd_v3
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, join_hint


def eks_lines(facts, key_facts):
    lines = []
    if facts:
        lines.append("EKS %s (%s, %s): Secrets key %s%s; stack key %s (%s)" % (
            facts["cluster"], facts["region"] or "default region", facts["status"], facts["key_arn"] or "NONE",
            " = %s" % facts["key_arn_resolved"] if facts["key_arn_resolved"] not in (None, facts["key_arn"]) else "",
            facts["expected_key_arn"], facts["expected_key"]))
        key_facts = facts.get("key")
    if key_facts:
        lines.append("KMS key %s: %s, %s, %s, rotation %s" % (
            key_facts["arn"], key_facts["state"], key_facts["key_manager"], key_facts["key_spec"],
            {True: "on", False: "OFF", None: "not checked"}[key_facts["rotation_enabled"]]))
    return lines


def aws_findings(module, result):
    """With cluster_name: the EKS cluster and its Secrets key; with kms_key alone: the key. Facts go to ``result``."""
    p = module.params
    if not (p["cluster_name"] or p["kms_key"]):
        return []
    eks, kms = envelope_aws.clients(p["aws_region"], p["aws_endpoint_url"])
    if p["cluster_name"]:
        facts, found = envelope_aws.check_eks(eks, kms, p["cluster_name"], p["aws_region"], p["kms_key"],
                                              p["require_rotation"])
        result["eks"] = facts
        result["report"] += eks_lines(facts, None)
    else:
        facts, found = envelope_aws.check_key(kms, p["kms_key"], p["aws_region"], p["require_rotation"])
        result["key"] = facts
        result["report"] += eks_lines(None, facts)
    return found


def etcd_gateway(p):
    """The etcd client when etcd_endpoints are given, else None (checked before anything is read)."""
    if not p["etcd_endpoints"]:
        return None
    return etcd_v3.EtcdGateway(p["etcd_endpoints"], p["etcd_ca_cert"], p["etcd_client_cert"],
                               p["etcd_client_key"], p["etcd_api_prefix"], p["etcd_timeout"])


def etcd_findings(module, gateway, target, namespaces, result):
    """With etcd: one finding when Secrets in etcd are not written by ``target``. The scan goes to ``result``."""
    p = module.params
    if gateway is None:
        return []
    scan = envelope.scan_secrets(gateway, p["etcd_prefix"], target, namespaces, p["etcd_page_size"])
    result["etcd"] = scan.result()
    result["report"] += scan.summary_lines()
    if scan.total == 0:
        module.warn("No Secrets under %s in etcd%s: is etcd_prefix the API server's --etcd-prefix?"
                    % (scan.prefix, " for namespaces %s" % ", ".join(namespaces) if namespaces else ""))
    if not scan.off_target:
        return []
    off = {}
    for item in scan.off_target:
        off[item["provider"]] = off.get(item["provider"], 0) + 1
    kinds = ", ".join("%s: %d" % (envelope.PROVIDERS[k], v) for k, v in sorted(off.items()))
    return [dict(
        source="etcd", check="secrets_encryption",
        message="%d of %d Secrets in etcd are not written by %s (%s): %s" % (
            len(scan.off_target), scan.total, target.describe(), kinds, envelope.quote_refs(scan.refs())),
        hint="Make the kms v2 provider the first provider of the API server's EncryptionConfiguration on "
             "every API server, then rewrite them: playbooks/envelope-encryption.yml -e "
             "envelope_encryption_reencrypt=true (heracles.secrets.k8s_secrets_reencrypt with etcd_endpoints)")]


def run_module():
    spec = dict(
        namespaces=dict(type="list", elements="str", default=[]),
        require_rotation=dict(type="bool", default=True),
        fail_on_findings=dict(type="bool", default=True),
    )
    spec.update(etcd_v3.ETCD_SPEC)
    spec.update(envelope.TARGET_SPEC)
    spec.update(envelope_aws.AWS_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[("etcd_endpoints", "cluster_name", "kms_key")],
                           required_by={"cluster_name": ("kms_key",)})
    p = module.params
    result = dict(changed=False, ok=True, findings=[], report=[])
    try:
        namespaces = envelope.check_namespaces(p["namespaces"])
        target = envelope.Target(p["kms_provider_name"], p["kms_v2_key_id"])
        gateway = etcd_gateway(p)
        findings = aws_findings(module, result)
        findings += etcd_findings(module, gateway, target, namespaces, result)
    except HeraclesError as exc:
        module.fail_json(msg=join_hint(exc.message, exc.hint), **result)
    result["findings"] = findings
    result["ok"] = not findings
    for item in findings:
        result["report"].append("FINDING (%s): %s" % (item["source"], join_hint(item["message"], item["hint"])))
    if findings and p["fail_on_findings"]:
        module.fail_json(msg="Secrets encryption at rest: %d finding(s): %s" % (
            len(findings), " | ".join(join_hint(f["message"], f["hint"]) for f in findings)), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
