# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # etcd and the encryption target: matches ETCD_SPEC (module_utils/etcd_v3.py) and TARGET_SPEC
    # (module_utils/envelope.py); tests/unit/plugins/module_utils/test_envelope.py keeps them equal.
    DOCUMENTATION = r"""
options:
  etcd_endpoints:
    description:
      - Client URLs of the etcd cluster that stores the Kubernetes objects (as in kube-apiserver C(--etcd-servers)),
        for example C(https://10.0.0.10:2379). Tried in order until one answers.
      - Self-managed clusters only; EKS gives no access to its etcd.
      - Read through etcd's gRPC gateway (JSON over HTTP(S), C(POST /v3/kv/range)); nothing is written to etcd.
    type: list
    elements: str
  etcd_ca_cert:
    description: CA bundle that signed etcd's server certificate (kubeadm C(/etc/kubernetes/pki/etcd/ca.crt)).
    type: path
  etcd_client_cert:
    description:
      - Client certificate (PEM) etcd trusts, for C(--client-cert-auth) (kubeadm
        C(/etc/kubernetes/pki/apiserver-etcd-client.crt)). Needs O(etcd_client_key).
    type: path
  etcd_client_key:
    description: Private key (PEM) of O(etcd_client_cert). A path; the key itself is never read by Ansible.
    type: path
  etcd_prefix:
    description: The API server's C(--etcd-prefix); Secrets live under C(<etcd_prefix>/secrets/<namespace>/<name>).
    type: str
    default: /registry
  etcd_api_prefix:
    description: Path of etcd's JSON gateway. V(/v3) for etcd 3.4 and later, V(/v3beta) for 3.3.
    type: str
    default: /v3
  etcd_page_size:
    description: Keys read per request. Every page is read at the first page's revision (one consistent snapshot).
    type: int
    default: 500
  etcd_timeout:
    description: Seconds to wait for each etcd request.
    type: int
    default: 30
  kms_provider_name:
    description:
      - The name of the KMS v2 provider in the API server's EncryptionConfiguration (pulumi/platform renders
        C(<clusterName>-kms)). Values must start with C(k8s:enc:kms:v2:<kms_provider_name>:).
      - Unset, any KMS v2 provider counts.
    type: str
  kms_v2_key_id:
    description:
      - The key ID the KMS v2 plugin reports (its C(Status) call); stored in every value's C(EncryptedObject) in clear.
        When set, values written under another key ID are not on target (the key changed since they were written).
    type: str
"""

    # Matches AWS_SPEC (module_utils/envelope_aws.py).
    AWS = r"""
options:
  cluster_name:
    description:
      - The EKS cluster whose Secrets encryption to check (C(eks:DescribeCluster) C(encryptionConfig)).
    type: str
  kms_key:
    description:
      - The stack's KMS key for Secrets, as key ARN, key ID, alias name (C(alias/<clusterName>-k8s-secrets), what
        pulumi/platform creates) or alias ARN. Resolved with C(kms:DescribeKey) and compared as key ARNs.
    type: str
  aws_region:
    description: AWS region of the cluster and the key. Falls back to E(AWS_REGION) / E(AWS_DEFAULT_REGION).
    type: str
  aws_endpoint_url:
    description: Alternative endpoint for EKS and KMS (a VPC endpoint, or a test server).
    type: str
"""
