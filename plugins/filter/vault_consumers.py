# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_consumers
short_description: The ExternalSecrets and workloads that consume given Vault secrets (vault/ data)
version_added: "0.1.0"
description:
  - From an environment's declared apps (P(heracles.secrets.vault_workloads#filter)), the ExternalSecrets that read
    any of the given Vault secrets (C(apps/<app>/<name>), with or without the KV mount in front) and the workloads
    (Deployments, StatefulSets, DaemonSets) declared as consumers of their Secrets.
  - Given a mapping of path to the time it changed (unix seconds or RFC 3339), also returns C(changed_at), the newest
    change each ExternalSecret reads, in the form M(heracles.secrets.eso_rollout) takes.
author: heracles.secrets contributors (!UNKNOWN)
positional: secrets
seealso:
  - plugin: heracles.secrets.vault_workloads
    plugin_type: filter
  - module: heracles.secrets.eso_rollout
options:
  _input:
    description: The environment's declared apps, from P(heracles.secrets.vault_workloads#filter).
    type: dict
    required: true
  secrets:
    description: The changed Vault secrets -- a list of paths, or a mapping of path to the time it changed.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Who reads apps/payments/db in dev
  ansible.builtin.debug:
    msg: "{{ ((playbook_dir ~ '/../vault') | heracles.secrets.vault_workloads('dev'))
             | heracles.secrets.vault_consumers(['apps/payments/db']) }}"

- name: The same, with the time each secret changed (for heracles.secrets.eso_rollout)
  ansible.builtin.debug:
    msg: "{{ declared | heracles.secrets.vault_consumers({'apps/payments/db': 1796612646}) }}"
"""

RETURN = r"""
_value:
  description:
    - C(external_secrets) (C(namespace/name)), C(workloads) (C({namespace, kind, name, secrets})) in declaration
      order, and given times, C(changed_at) (unix seconds per C(namespace/name)).
  type: dict
  sample:
    external_secrets: [payments/payments-db]
    workloads: [{namespace: payments, kind: Deployment, name: payments-api, secrets: [payments-db]}]
    changed_at: {payments/payments-db: 1796612646}
"""

from ansible.errors import AnsibleFilterError
from collections.abc import Mapping

from ansible_collections.heracles.secrets.plugins.module_utils.rollout import changed_epoch
from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import consumers_of


def vault_consumers(declared, secrets):
    if not isinstance(declared, Mapping) or "apps" not in declared:
        raise AnsibleFilterError("vault_consumers: the input must be an environment's apps from "
                                 "heracles.secrets.vault_workloads, got %s" % type(declared).__name__)
    if isinstance(secrets, str) or not hasattr(secrets, "__iter__"):
        raise AnsibleFilterError("vault_consumers: give the changed secrets as a list of paths or a mapping of path "
                                 "to time, got %r" % (secrets,))
    out = consumers_of(declared, list(secrets))
    if isinstance(secrets, Mapping):
        changed_at = {}
        for path, when in secrets.items():
            stamp = changed_epoch(when)
            if stamp is None:
                raise AnsibleFilterError("vault_consumers: the time of %s, %r, is not unix seconds or RFC 3339"
                                         % (path, when))
            for ref in consumers_of(declared, [path])["external_secrets"]:
                changed_at[ref] = max(stamp, changed_at.get(ref, stamp))
        out["changed_at"] = changed_at
    return out


class FilterModule(object):
    def filters(self):
        return {"vault_consumers": vault_consumers}
