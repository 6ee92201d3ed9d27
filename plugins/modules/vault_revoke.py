#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_revoke
short_description: Revoke tokens by accessor and leases by prefix (leak response)
version_added: "0.1.0"
description:
  - Revokes each token in O(token_accessors) (C(POST /v1/auth/token/revoke-accessor)) together with its children,
    and every lease under each of O(lease_prefixes) (C(PUT /v1/sys/leases/revoke-prefix/<prefix>)).
  - Idempotent. An accessor that no longer resolves, or a prefix with no leases, is reported as already revoked.
  - Token accessors are not secrets (they cannot be used to authenticate), so they appear in the result.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_kv_rotate
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Looks the accessors and leases up and reports what would be revoked.
  diff_mode:
    support: none
    description: The result lists what was revoked.
options:
  token_accessors:
    description: Accessors of tokens to revoke.
    type: list
    elements: str
    default: []
  lease_prefixes:
    description: Lease ID prefixes to revoke (for example C(database/creds/readonly)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Revoke the leaked token and every database credential it created
  heracles.secrets.vault_revoke:
    token_accessors: [hmac-or-plain-accessor]
    lease_prefixes: [database-prod/creds/payments]
"""

RETURN = r"""
revoked_tokens:
  description: Accessors revoked by this task (or that would be, in check mode).
  returned: always
  type: list
  elements: str
already_revoked_tokens:
  description: Accessors that did not resolve (revoked or expired earlier).
  returned: always
  type: list
  elements: str
revoked_prefixes:
  description: Prefixes whose leases were revoked, with how many leases were found.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule


def accessor_alive(client, accessor):
    """``POST /v1/auth/token/lookup-accessor``: False when the token is gone."""
    try:
        api.lookup_accessor(client, accessor)
        return True
    except Exception as exc:  # noqa: BLE001
        if exc.__class__.__name__ == "InvalidRequest":  # 400 "invalid accessor": revoked or expired
            return False
        raise


def lease_count(client, prefix):
    """``LIST /v1/sys/leases/lookup/<prefix>`` (recursively) -> number of leases."""
    count, todo = 0, [prefix.strip("/")]
    while todo:
        base = todo.pop()
        try:
            keys = api.list_leases(client, base)
        except Exception as exc:  # noqa: BLE001
            if exc.__class__.__name__ == "InvalidPath":
                continue
            raise
        for key in keys:
            if key.endswith("/"):
                todo.append(base + "/" + key.rstrip("/"))
            else:
                count += 1
    return count


def run_module():
    module = VaultModule(
        argument_spec=dict(
            token_accessors=dict(type="list", elements="str", default=[], no_log=False),
            lease_prefixes=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["token_accessors"] and not p["lease_prefixes"]:
        module.fail_json(msg="give token_accessors and/or lease_prefixes; nothing to revoke")
    client = module.client
    result = dict(revoked_tokens=[], already_revoked_tokens=[], revoked_prefixes=[])
    try:
        for accessor in p["token_accessors"]:
            if not accessor_alive(client, accessor):
                result["already_revoked_tokens"].append(accessor)
                continue
            if not module.check_mode:
                api.revoke_accessor(client, accessor)
            result["revoked_tokens"].append(accessor)
        for prefix in p["lease_prefixes"]:
            found = lease_count(client, prefix)
            if found and not module.check_mode:
                api.revoke_prefix(client, prefix.strip("/"))
            if found:
                result["revoked_prefixes"].append(dict(prefix=prefix, leases=found))
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Revoking", changed=bool(result["revoked_tokens"] or result["revoked_prefixes"])
                         and not module.check_mode, **result)
    if result["already_revoked_tokens"]:
        # Vault answers the same for a revoked token and for an accessor that never existed: say both.
        module.warn("No live token has accessor(s) %s: already revoked or expired, or the accessor is mistyped. Check it "
                    "against the audit log (auth.accessor) if this is the first run for this incident"
                    % ", ".join(result["already_revoked_tokens"]))
    module.exit_ok(changed=bool(result["revoked_tokens"] or result["revoked_prefixes"]), **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
