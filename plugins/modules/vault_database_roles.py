#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_database_roles
short_description: Create, update and delete the dynamic roles of a database secrets engine, each tried for real
version_added: "0.2.0"
description:
  - Compares each role in O(roles) with C(GET /v1/<mount>/roles/<name>) and writes only those that differ
    (C(POST /v1/<mount>/roles/<name>)). With O(exclusive=true), roles on the mount that use one of the declared
    roles' connections but are not declared are deleted.
  - "Checked before the first write, with nothing changed on failure: the mount is a database engine; each role's
    C(max_ttl) is not above the mount's maximum lease TTL (Vault would silently cut every lease to it) and its
    C(default_ttl) not above its C(max_ttl); each role's connection exists and lists the role in C(allowed_roles)."
  - Vault stores creation statements without running them. With O(verify=true) every role this task created or
    changed issues one credential (C(GET /v1/<mount>/creds/<name>)), which is revoked at once
    (C(PUT /v1/sys/leases/revoke), running the revocation statements). When PostgreSQL rejects a statement the
    roles this task wrote are put back as they were (new ones deleted) and the task fails with the database's words.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_database_connection
  - module: heracles.secrets.vault_database_credentials
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads and compares; writes, issues and revokes nothing.
  diff_mode:
    support: full
    description: Each changed role before and after (statements and TTLs; they hold no secret).
options:
  mount:
    description: Path of the database secrets engine.
    type: str
    required: true
  roles:
    description: The roles, each declared in full (a field left out means Vault's default).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Role name (C(<mount>/creds/<name>)).
        type: str
        required: true
      db_name:
        description: The connection the role uses.
        type: str
        required: true
      creation_statements:
        description: SQL run to create a credential's user; C({{name}}), C({{password}}), C({{expiration}}) are Vault's.
        type: list
        elements: str
        required: true
      revocation_statements:
        description: SQL run when the lease ends or is revoked.
        type: list
        elements: str
        default: []
      renew_statements:
        description: SQL run when a lease is renewed.
        type: list
        elements: str
        default: []
      rollback_statements:
        description: SQL run when creating a credential fails half-way.
        type: list
        elements: str
        default: []
      default_ttl:
        description: Lease TTL of a credential (C(1h), or seconds).
        type: raw
        default: 0
      max_ttl:
        description: Longest a credential's lease may be renewed to.
        type: raw
        default: 0
  exclusive:
    description: Delete roles on the mount that are not declared and use one of the declared roles' connections.
    type: bool
    default: false
  verify:
    description: Issue and revoke one credential for every role this task created or changed.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The roles of the payments connection, tried for real
  heracles.secrets.vault_database_roles:
    mount: database-prod
    exclusive: true
    roles:
      - name: orders-ro
        db_name: payments
        creation_statements:
          - CREATE ROLE "{{ '{{name}}' }}" WITH LOGIN PASSWORD '{{ '{{password}}' }}' VALID UNTIL '{{ '{{expiration}}' }}';
          - GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{ '{{name}}' }}";
        revocation_statements: ['DROP ROLE IF EXISTS "{{ ''{{name}}'' }}";']
        default_ttl: 30m
        max_ttl: 2h
"""

RETURN = r"""
created:
  description: Roles created.
  returned: always
  type: list
  elements: str
updated:
  description: Roles whose definition changed.
  returned: always
  type: list
  elements: str
deleted:
  description: Roles deleted (O(exclusive=true)).
  returned: always
  type: list
  elements: str
unchanged:
  description: Roles already as declared.
  returned: always
  type: list
  elements: str
verified:
  description: Roles that issued (and revoked) a credential in this task.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import database as db
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

ROLE_SPEC = dict(
    name=dict(type="str", required=True),
    db_name=dict(type="str", required=True),
    creation_statements=dict(type="list", elements="str", required=True),
    revocation_statements=dict(type="list", elements="str", default=[]),
    renew_statements=dict(type="list", elements="str", default=[]),
    rollback_statements=dict(type="list", elements="str", default=[]),
    default_ttl=dict(type="raw", default=0),
    max_ttl=dict(type="raw", default=0),
)


class InputError(ValueError):
    pass


def wanted_role(spec, mount_max):
    what = "role %s" % spec["name"]
    role = dict(db_name=spec["db_name"])
    for key in ("creation_statements", "revocation_statements", "renew_statements", "rollback_statements"):
        role[key] = [s for s in spec[key] or [] if s and s.strip()]
    if not role["creation_statements"]:
        raise InputError("%s: creation_statements is empty" % what)
    for key in ("default_ttl", "max_ttl"):
        try:
            role[key] = int(parse_duration(spec[key] or 0))
        except ValueError as exc:
            raise InputError("%s: %s %s" % (what, key, exc))
        if role[key] < 0:
            raise InputError("%s: %s must not be negative" % (what, key))
    limit = mount_max or db.SYSTEM_MAX_TTL
    for key in ("default_ttl", "max_ttl"):
        if role[key] > limit:
            raise InputError("%s: %s %ss is above the mount's max_lease_ttl %ss: Vault would cut every lease to %ss. "
                             "Lower the role's TTL or raise the mount's (vault/environments/<env>.yml database.max_ttl)"
                             % (what, key, role[key], limit, limit))
    if role["default_ttl"] and role["max_ttl"] and role["default_ttl"] > role["max_ttl"]:
        raise InputError("%s: default_ttl (%ss) is above max_ttl (%ss)" % (what, role["default_ttl"], role["max_ttl"]))
    return role


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            roles=dict(type="list", elements="dict", default=[], options=ROLE_SPEC),
            exclusive=dict(type="bool", default=False),
            verify=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    mount = p["mount"].strip("/")
    names = check_input(module)
    max_lease_ttl = read_engine(module, mount, names)
    try:
        roles = dict((spec["name"], wanted_role(spec, max_lease_ttl)) for spec in p["roles"])
    except InputError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)
    current, stray = read_current(module, mount, roles)
    result = dict(created=sorted(n for n in roles if n not in current),
                  updated=sorted(n for n in current if current[n] != roles[n]),
                  unchanged=sorted(n for n in current if current[n] == roles[n]),
                  deleted=sorted(stray), verified=[])
    changed = bool(result["created"] or result["updated"] or result["deleted"])
    if changed and not module.check_mode:
        apply(module, module.client, mount, roles, current, result)
    result["changed"] = changed
    if module._diff:
        touched = result["created"] + result["updated"] + result["deleted"]
        result["diff"] = dict(before=dict((n, current.get(n, "exists (not declared)")) for n in touched
                                          if n in current or n in stray),
                              after=dict((n, roles[n]) for n in touched if n in roles))
    module.exit_ok(**result)


def check_input(module):
    """The declared role names; fails (nothing changed) on a name declared twice or an empty exclusive set."""
    p = module.params
    names = [spec["name"] for spec in p["roles"]]
    if len(names) != len(set(names)):
        module.fail_json(msg="a role is declared twice (%s); nothing was changed"
                             % ", ".join(sorted(n for n in set(names) if names.count(n) > 1)))
    if p["exclusive"] and not p["roles"]:
        module.fail_json(msg="exclusive=true with no declared role would delete nothing it could scope; declare the "
                             "roles; nothing was changed")
    return names


def read_engine(module, mount, names):
    """The engine's max_lease_ttl; fails unless ``mount`` is a database engine (check mode: would create all)."""
    try:
        mount_entry = db.read_mount(module.client, mount)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading secrets engine %s" % mount)
    if mount_entry is None and module.check_mode:
        # a run would enable it first (configure.yml's secrets engines task): every role would be created
        module.exit_ok(changed=bool(names), created=sorted(names), updated=[], unchanged=[], deleted=[], verified=[])
    if mount_entry is None or mount_entry["type"] != "database":
        module.fail_json(msg="%s is %s: enable the database secrets engine there first; nothing was changed"
                             % (mount, "not enabled" if mount_entry is None else "a %s engine" % mount_entry["type"]))
    return mount_entry["max_lease_ttl"]


def read_current(module, mount, roles):
    """``(current, stray)``: the declared roles as stored, and (exclusive) the undeclared ones on the same connections."""
    client = module.client
    try:
        check_connections(client, mount, roles, module.check_mode)
        existing = api.list_database_roles(client, mount)
        current = dict((n, db.role_view(api.read_database_role(client, mount, n))) for n in roles if n in existing)
        connections = set(r["db_name"] for r in roles.values())
        stray = []
        if module.params["exclusive"]:
            stray = [name for name in existing if name not in roles
                     and db.role_view(api.read_database_role(client, mount, name))["db_name"] in connections]
    except InputError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the roles of %s" % mount)
    return current, stray


def check_connections(client, mount, roles, check_mode=False):
    """Every role's connection exists and allows it: else the first credential would fail, far from here. In check
    mode a connection that does not exist yet may be one an earlier task of the same run would create."""
    seen = {}
    for name, role in sorted(roles.items()):
        conn = role["db_name"]
        if conn not in seen:
            seen[conn] = api.read_database_connection(client, mount, conn)
        if seen[conn] is None and check_mode:
            continue
        if seen[conn] is None:
            raise InputError("role %s uses connection %s, which %s does not have: configure the connection first "
                             "(vault_database_connection)" % (name, conn, mount))
        allowed = seen[conn].get("allowed_roles") or []
        if name not in allowed and "*" not in allowed:
            raise InputError("role %s is not in the allowed_roles of connection %s (%s): add it there first"
                             % (name, conn, ", ".join(allowed) or "none"))


def apply(module, client, mount, roles, current, result):
    """Write the created/updated roles, issue and revoke a trial credential of each (verify), delete the stray ones.

    A write or trial that fails puts back what this task wrote (new roles deleted, changed ones as they were).
    """
    written = []

    def undo():
        failed = []
        for name in reversed(written):
            try:
                if name in current:
                    api.create_database_role(client, mount, name, current[name])
                else:
                    api.delete_database_role(client, mount, name)
            except Exception:  # noqa: BLE001 - reported
                failed.append(name)
        return failed

    for name in result["created"] + result["updated"]:
        try:
            api.create_database_role(client, mount, name, roles[name])
        except Exception as exc:  # noqa: BLE001
            left = undo()
            module.fail_from(exc, "Writing role %s on %s%s" % (name, mount, undo_note(left)), changed=bool(left))
        written.append(name)
    if module.params["verify"]:
        for name in list(written):
            verify_role(module, client, mount, name, undo)
            result["verified"].append(name)
    for name in result["deleted"]:
        try:
            api.delete_database_role(client, mount, name)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Deleting role %s on %s" % (name, mount), changed=True, **result)


def verify_role(module, client, mount, name, undo):
    """Issue a credential of role ``name`` and revoke it: its creation and revocation statements work."""
    try:
        issued = api.generate_database_credentials(client, mount, name)
    except Exception as exc:  # noqa: BLE001
        left = undo()
        text = db.server_text(exc)
        if exc.__class__.__name__ in ("InternalServerError", "InvalidRequest") and "not an allowed role" not in text:
            module.fail_json(msg="Role %s on %s does not work: issuing a credential failed: %s. Fix its "
                                 "statements (the database refused one) or the connection's grants%s"
                                 % (name, mount, db.explain_statement_error(text), undo_note(left)),
                             changed=bool(left), **module.endpoint_info())
        module.fail_from(exc, "Issuing a trial credential of role %s on %s%s" % (name, mount, undo_note(left)),
                         changed=bool(left))
    try:
        api.revoke_lease(client, issued["lease_id"])
    except Exception as exc:  # noqa: BLE001
        left = undo()
        if exc.__class__.__name__ not in ("InternalServerError", "InvalidRequest"):
            module.fail_from(exc, "Revoking the trial credential of role %s (lease %s) on %s"
                             % (name, issued["lease_id"], mount), changed=True)
        module.fail_json(msg="Role %s on %s does not work: revoking its trial credential failed: %s. Fix its "
                             "revocation_statements (revoke every grant before DROP ROLE), then revoke lease %s "
                             "(vault_revoke); until then its user %s stays, and its VALID UNTIL ends it%s"
                             % (name, mount, db.explain_statement_error(db.server_text(exc)), issued["lease_id"],
                                issued["username"], undo_note(left, done="put back as they were")),
                         changed=True, **module.endpoint_info())


def undo_note(left, done="put back as they were, nothing was changed"):
    if left:
        return "; putting back %s failed: check them by hand" % ", ".join(left)
    return "; the roles this task wrote were " + done


def main():
    run_module()


if __name__ == "__main__":
    main()
