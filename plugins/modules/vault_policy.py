#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_policy
short_description: Create, update and delete ACL policies, one or many, optionally exclusively
version_added: "0.1.0"
description:
  - Compares each declared policy with C(GET /v1/sys/policies/acl/<name>) and writes only those that differ.
  - Before the first write every new or changed policy is checked by the server's own parser (it is written under a
    temporary name and removed), so one unparseable policy fails the task with no policy changed.
  - With O(exclusive=true), policies that are not declared are deleted, except the built-ins C(root) and C(default)
    and names matching O(keep).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_mount
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads and compares; writes nothing (and so skips the server-side parse check).
  diff_mode:
    support: full
    description: The HCL of every changed policy, before and after (policies hold no secret values).
options:
  name:
    description: Name of a single policy (with O(policy) or O(state=absent)).
    type: str
  policy:
    description: HCL text of the single policy O(name).
    type: str
  policies:
    description: 'Many policies as C({name: hcl}).'
    type: dict
    default: {}
  policy_type:
    description:
      - V(acl) for ACL policies (C(sys/policies/acl)), V(password) for password policies (C(sys/policies/password))
        used to generate secrets.
    type: str
    default: acl
    choices: [acl, password]
  state:
    description: V(present) writes the declared policies; V(absent) deletes O(name) (and every key of O(policies)).
    type: str
    default: present
    choices: [present, absent]
  exclusive:
    description: Delete every policy that is not declared (never C(root) or C(default)).
    type: bool
    default: false
  keep:
    description: With O(exclusive), names (shell-style patterns) that are never deleted.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: One policy from a file
  heracles.secrets.vault_policy:
    name: dev-developer
    policy: "{{ lookup('ansible.builtin.file', 'vault/policies/developer.hcl') }}"

- name: Exactly these policies
  heracles.secrets.vault_policy:
    policies: "{{ configure_policies }}"
    exclusive: true
"""

RETURN = r"""
created:
  description: Policies created.
  returned: always
  type: list
  elements: str
updated:
  description: Policies whose HCL changed.
  returned: always
  type: list
  elements: str
deleted:
  description: Policies deleted.
  returned: always
  type: list
  elements: str
unchanged:
  description: Policies already as declared.
  returned: always
  type: list
  elements: str
"""

import fnmatch
import uuid

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

BUILTIN = ("root", "default")


def normalize(text):
    """Compare policies modulo trailing whitespace and line endings."""
    return "\n".join(line.rstrip() for line in (text or "").replace("\r\n", "\n").strip().split("\n"))


def local_syntax_error(text, policy_type="acl"):
    """Cheap checks the server would also fail on; the server parse follows outside check mode."""
    depth, quote = 0, False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "{":
            depth += 1
        elif not quote and ch == "}":
            depth -= 1
            if depth < 0:
                return "unbalanced '}'"
    if quote:
        return "unterminated string"
    if depth:
        return "unbalanced '{'"
    if policy_type == "acl" and "path" not in text:
        return "no path stanza"
    return None


def declared_policies(module):
    """{name: HCL text} from name/policy and policies, checked locally; fails before any request."""
    p = module.params
    declared = dict(p["policies"] or {})
    if p["name"]:
        if p["state"] == "present" and p["policy"] is None:
            module.fail_json(msg="policy (the HCL text) is required with name and state=present")
        declared[p["name"]] = p["policy"]
    if p["state"] == "present":
        for name, text in declared.items():
            if not isinstance(text, str) or not text.strip():
                module.fail_json(msg="policy %r is empty or not text; nothing was changed" % name)
            problem = local_syntax_error(text, p["policy_type"])
            if problem:
                module.fail_json(msg="policy %r does not parse: %s; nothing was changed" % (name, problem))
        if p["exclusive"] and not declared:
            module.fail_json(msg="exclusive=true with no declared policy would delete every policy; refusing")
    if p["policy_type"] == "acl" and "root" in declared:
        module.fail_json(msg="the root policy is built in and cannot be managed")
    return declared


def plan_changes(module, client, declared):
    """Reads only: (result with created/updated/deleted/unchanged names, texts before, texts after)."""
    p = module.params
    kind = p["policy_type"]
    builtin = BUILTIN if kind == "acl" else ()
    result = dict(created=[], updated=[], deleted=[], unchanged=[])
    before, after = {}, {}
    existing = api.list_policies(client, kind)
    if p["state"] == "absent":
        result["deleted"] = sorted(n for n in declared if n in existing and n not in builtin)
    else:
        current = dict((n, api.read_policy(client, n, kind)) for n in declared if n in existing)
        for name in sorted(declared):
            if name not in current:
                result["created"].append(name)
            elif normalize(current[name]) != normalize(declared[name]):
                result["updated"].append(name)
                before[name] = current[name]
            else:
                result["unchanged"].append(name)
        for name in result["created"] + result["updated"]:
            after[name] = declared[name]
        if p["exclusive"]:
            result["deleted"] = sorted(n for n in existing if n not in declared and n not in builtin
                                       and not any(fnmatch.fnmatch(n, pat) for pat in p["keep"]))
    for name in result["deleted"]:
        before[name] = api.read_policy(client, name, kind)
    return result, before, after


def apply_changes(module, client, declared, result):
    """Write the created and updated policies (each parsed by the server first), delete the others; True if any."""
    kind = module.params["policy_type"]
    changed = bool(result["created"] or result["updated"] or result["deleted"])
    if changed and not module.check_mode:
        to_write = result["created"] + result["updated"]
        validate_on_server(module, client, dict((n, declared[n]) for n in to_write))
        for name in to_write:
            api.create_or_update_policy(client, name, declared[name], kind)
        for name in result["deleted"]:
            api.delete_policy(client, name, kind)
    return changed


def run_module():
    module = VaultModule(
        argument_spec=dict(
            name=dict(type="str"),
            policy=dict(type="str"),
            policies=dict(type="dict", default={}),
            policy_type=dict(type="str", default="acl", choices=["acl", "password"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            exclusive=dict(type="bool", default=False),
            keep=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    declared = declared_policies(module)
    client = module.client
    try:
        result, before, after = plan_changes(module, client, declared)
        changed = apply_changes(module, client, declared, result)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Managing ACL policies")
    result["changed"] = changed
    if module._diff:
        result["diff"] = dict(before="".join("# %s\n%s\n" % (n, before.get(n, "")) for n in sorted(set(before) | set(after))),
                              after="".join("# %s\n%s\n" % (n, after.get(n, "")) for n in sorted(set(before) | set(after))))
    module.exit_ok(**result)


def validate_on_server(module, client, policies):
    """Let the server parse each policy under a throw-away name first: all or nothing."""
    kind = module.params["policy_type"]
    probe = "heracles-validate-%s" % uuid.uuid4().hex[:12]
    try:
        for name, text in sorted(policies.items()):
            try:
                api.create_or_update_policy(client, probe, text, kind)
            except Exception as exc:  # noqa: BLE001
                errors = "; ".join(getattr(exc, "errors", None) or [str(exc)])
                module.fail_json(msg="policy %r does not parse: %s; nothing was changed" % (name, errors))
    finally:
        try:
            api.delete_policy(client, probe, kind)
        except Exception:  # noqa: BLE001 - best effort: the probe policy is attached to no token
            pass


def main():
    run_module()


if __name__ == "__main__":
    main()
