# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The ESO API version option of the ESO modules (plugins/module_utils/eso_kube.py KUBE_SPEC; the kubeconfig and
    context options are heracles.secrets.kubernetes's)."""

    DOCUMENTATION = r"""
options:
  api_version:
    description: Version of C(external-secrets.io) to use; V(v1beta1) only for ESO older than 0.17.
    type: str
    choices: [v1, v1beta1]
    default: v1
"""
