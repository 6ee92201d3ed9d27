# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How the modules that talk to the Kubernetes API find it (KUBE_SPEC of module_utils/eso_kube.py and
    module_utils/secrets_kube.py; tests/unit/plugins/module_utils/test_envelope.py keeps them equal)."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Kubeconfig file for the Kubernetes API. Without it and O(context), the in-cluster configuration is used when
        running in a pod, else E(KUBECONFIG) or C(~/.kube/config).
    type: path
  context:
    description: Kubeconfig context to use.
    type: str
"""
