#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_database_connection
short_description: Configure a database secrets engine connection, hand over its admin password once, rotate it
version_added: "0.2.0"
description:
  - Writes the connection O(name) of the database secrets engine at O(mount) (C(POST /v1/<mount>/config/<name>)) when
    it is missing or its settings differ, with Vault verifying the connection before it stores anything.
  - The initial admin password is read from O(admin_source) (an ansible-vault file or a Secrets Manager secret), never
    from task arguments in clear. Right after Vault accepted it the root credential is rotated
    (C(POST /v1/<mount>/rotate-root/<name>)), so the password that was used no longer logs in; if that rotation fails
    on a connection this task created, the connection is deleted again and the task fails.
  - Vault never returns the password. To detect its drift the module keeps a fingerprint of the admin password it
    handed over last in the connection's own details (C(connection_details.heracles_admin_fingerprint), PBKDF2-SHA256,
    salted, cut to 24 hex digits). A rerun with the same source reports no change and does not send the password
    again (it was rotated away); a different password in the source, a connection set up by someone else, or an
    edited marker is a change, and the new password is handed over and rotated again.
  - Settings that differ while the password does not (host, database, TLS, allowed roles) are written without the
    password; Vault keeps the one it has and verifies the connection with it.
  - The time of the last root rotation is kept as C(connection_details.heracles_root_rotated_at) for
    M(heracles.secrets.vault_database_rotate_root).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_database_roles
  - module: heracles.secrets.vault_database_rotate_root
  - module: heracles.secrets.vault_mount
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the connection and the admin source and reports what a run would write; writes and rotates
      nothing.
  diff_mode:
    support: full
    description: The settings before and after; the admin password only as its fingerprint or a marker.
options:
  mount:
    description: Path of the database secrets engine (for example C(database-prod)); it must be enabled.
    type: str
    required: true
  name:
    description: The connection's name (C(<mount>/config/<name>)); roles name it as C(db_name).
    type: str
    required: true
  state:
    description: V(absent) deletes the connection (its roles stay, unusable, until they are deleted).
    type: str
    default: present
    choices: [present, absent]
  plugin_name:
    description: The database plugin.
    type: str
    default: postgresql-database-plugin
  connection_url:
    description:
      - The plugin's connection URL with C({{username}}) and C({{password}}) left for Vault, TLS settings as query
        parameters, for example C(postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full).
      - Required with O(state=present).
    type: str
  username:
    description: The admin user Vault connects as (it creates and drops the credentials' users). Required with O(state=present).
    type: str
  allowed_roles:
    description: The roles that may issue credentials through this connection.
    type: list
    elements: str
    default: []
  max_open_connections:
    description: Upper bound of Vault's connection pool to this database.
    type: int
  admin_source:
    description:
      - Where the initial admin password is kept. Read on every run to compare its fingerprint, sent to Vault only
        when it differs from the one handed over last.
    type: dict
    suboptions:
      store:
        description: V(file) for an ansible-vault file, V(aws_secretsmanager) for a Secrets Manager secret.
        type: str
        required: true
        choices: [file, aws_secretsmanager]
      file:
        description: The ansible-vault (AES256) file holding the password, bare or as a JSON object with O(admin_source.key).
        type: path
      password_file:
        description: The file with the ansible-vault password of O(admin_source.file).
        type: path
      secret_name:
        description: The Secrets Manager secret (a bare password or JSON with O(admin_source.key)).
        type: str
      key:
        description: The field holding the password when the secret or file is a mapping.
        type: str
        default: password
      region:
        description: AWS region of the secret.
        type: str
      endpoint_url:
        description: Alternative Secrets Manager endpoint (VPC endpoint, or a test server).
        type: str
  rotate_root:
    description: Rotate the root credential right after a password was handed over (leave on outside tests).
    type: bool
    default: true
  verify_connection:
    description: Let Vault connect with the settings before it stores them.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The payments database of prod, admin password from Secrets Manager, rotated right after
  heracles.secrets.vault_database_connection:
    mount: database-prod
    name: payments
    connection_url: "postgresql://{{ '{{username}}' }}:{{ '{{password}}' }}@payments-db:5432/payments?sslmode=verify-full"
    username: vault_admin
    allowed_roles: [payments-rw, orders-ro]
    admin_source:
      store: aws_secretsmanager
      secret_name: heracles/prod/database/payments-admin
      region: ap-northeast-1

- name: From an ansible-vault file instead
  heracles.secrets.vault_database_connection:
    mount: database-dev
    name: payments
    connection_url: "postgresql://{{ '{{username}}' }}:{{ '{{password}}' }}@127.0.0.1:5432/payments?sslmode=disable"
    username: vault_admin
    allowed_roles: [payments-rw]
    admin_source: {store: file, file: secrets/payments-admin.vault, password_file: ~/.vault-pass}
"""

RETURN = r"""
created:
  description: Whether the connection was created by this task.
  returned: always
  type: bool
updated:
  description: Settings that were written (names only); C(admin_password) when a new password was handed over.
  returned: always
  type: list
  elements: str
root_rotated:
  description: Whether the root credential was rotated by this task.
  returned: always
  type: bool
admin_fingerprint:
  description: The fingerprint kept in the connection after the task (not reversible; the password it stands for was
    rotated away).
  returned: when state=present
  type: str
  sample: "pbkdf2-sha256:3f9a0c1d2e4b5a69:8d2f0e4c1b7a9e3d5c6f1a2b"
connection:
  description: The connection's settings after the task, without any password.
  returned: when state=present
  type: dict
  sample: {plugin_name: postgresql-database-plugin, username: vault_admin, allowed_roles: [payments-rw],
           connection_url: "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full"}
"""

import time

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import database as db
from ansible_collections.heracles.secrets.plugins.module_utils.errors import ConfigError
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

PENDING = "<new admin password: handed over, then rotated away>"


def wanted_view(p):
    view = dict(plugin_name=p["plugin_name"], connection_url=p["connection_url"], username=p["username"],
                allowed_roles=sorted(set(p["allowed_roles"] or [])))
    if p["max_open_connections"] is not None:
        view["max_open_connections"] = p["max_open_connections"]
    return view


def host_of(url):
    rest = url.split("@", 1)[-1]
    return rest.split("/", 1)[0] or url


class Plan:
    """What differs, from reads only."""

    def __init__(self, current, wanted, password):
        self.current = current
        details = (current or {}).get("connection_details") or {}
        self.marker = details.get(db.FINGERPRINT_KEY)
        self.create = current is None
        before = db.connection_view(current) if current is not None else None
        self.before = before
        self.fields = sorted(k for k in wanted if before is None or before.get(k) != wanted[k])
        if before is not None and "max_open_connections" not in wanted:
            self.fields = [k for k in self.fields if k != "max_open_connections"]
        self.new_password = self.create or not db.fingerprint_matches(self.marker, password)

    @property
    def changed(self):
        return bool(self.create or self.fields or self.new_password)


def payload(wanted, verify, password=None, extra=None):
    body = dict(wanted)
    body["verify_connection"] = verify
    if password is not None:
        body["password"] = password
    body.update(extra or {})
    return body


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            plugin_name=dict(type="str", default=db.DEFAULT_PLUGIN),
            connection_url=dict(type="str"),
            username=dict(type="str"),
            allowed_roles=dict(type="list", elements="str", default=[]),
            max_open_connections=dict(type="int"),
            admin_source=dict(type="dict", options=db.ADMIN_SOURCE_SPEC),
            rotate_root=dict(type="bool", default=True),
            verify_connection=dict(type="bool", default=True),
        ),
        required_if=[("state", "present", ("connection_url", "username", "admin_source"))],
        supports_check_mode=True,
    )
    p = module.params
    mount, name = p["mount"].strip("/"), p["name"].strip("/")
    password = check_input(module, mount, name)
    client = module.client
    read_engine(module, client, mount)
    try:
        current = api.read_database_connection(client, mount, name)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading %s/config/%s" % (mount, name))
    if p["state"] == "absent":
        absent(module, client, mount, name, current)
    present(module, client, mount, name, current, password)


def check_input(module, mount, name):
    """The admin password (state=present); fails, changing nothing, on a bad name or a URL with credentials in it."""
    p = module.params
    if not mount or not name or "/" in name:
        module.fail_json(msg="mount and name must name the engine and one connection (no '/'); nothing was changed")
    if p["state"] != "present":
        return None
    if "{{password}}" not in p["connection_url"].replace(" ", "") and "@" in p["connection_url"]:
        module.fail_json(msg="connection_url %r carries credentials but not {{password}}: leave {{username}} and "
                             "{{password}} for Vault to fill in; nothing was changed" % host_of(p["connection_url"]))
    try:
        return db.read_admin_password(p["admin_source"])
    except ConfigError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)


def read_engine(module, client, mount):
    """Fails unless ``mount`` is a database engine; in check mode a missing one would be enabled first."""
    try:
        mount_entry = db.read_mount(client, mount)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading secrets engine %s" % mount)
    if mount_entry is None and module.check_mode and module.params["state"] == "present":
        # a run would enable it first (configure.yml's secrets engines task): report the connection as to be created
        wanted = wanted_view(module.params)
        module.exit_ok(changed=True, created=True, updated=sorted(wanted), root_rotated=False,
                       admin_fingerprint=PENDING, connection=wanted)
    if mount_entry is None or mount_entry["type"] != "database":
        module.fail_json(msg="%s is %s: enable the database secrets engine there first (configure.yml does, from "
                             "vault/environments/<env>.yml database.path); nothing was changed"
                             % (mount, "not enabled" if mount_entry is None else "a %s engine" % mount_entry["type"]))


def absent(module, client, mount, name, current):
    changed = current is not None
    if changed and not module.check_mode:
        try:
            api.delete_database_connection(client, mount, name)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Deleting %s/config/%s" % (mount, name))
    result = dict(changed=changed, created=False, updated=[], root_rotated=False)
    if module._diff:
        result["diff"] = dict(before=db.connection_view(current) if current else {}, after={})
    module.exit_ok(**result)


def present(module, client, mount, name, current, password):
    p = module.params
    wanted = wanted_view(p)
    plan = Plan(current, wanted, password)
    source = db.source_label(p["admin_source"])
    result = dict(changed=plan.changed, created=plan.create, updated=list(plan.fields), root_rotated=False)
    if plan.new_password and not plan.create:
        result["updated"].append("admin_password")
    fingerprint = plan.marker if not plan.new_password else None
    if plan.changed and not module.check_mode:
        fingerprint = apply(module, client, mount, name, plan, wanted, password, source, result)
    result.update(admin_fingerprint=fingerprint or (PENDING if plan.new_password else plan.marker), connection=wanted)
    if module._diff:
        before = dict(plan.before, admin_password=plan.marker or ("<set, no fingerprint>" if current else None)) \
            if plan.before is not None else {}
        after = dict(wanted, admin_password=(fingerprint or PENDING) if plan.new_password else plan.marker)
        result["diff"] = dict(before=before, after=after)
    module.exit_ok(**result)


def apply(module, client, mount, name, plan, wanted, password, source, result):
    """Write, rotate, stamp; undo a connection this task created when the rotation fails."""
    verify = module.params["verify_connection"]
    rotate = module.params["rotate_root"]
    where = host_of(wanted["connection_url"])
    if plan.new_password:
        fingerprint = db.admin_fingerprint(password)
        # Without a rotation the fingerprint goes in with the password; with one, only after the rotation, so that a
        # rotation that fails leaves the old marker and the next run hands the (still valid) password over again.
        extra = {} if rotate else {db.FINGERPRINT_KEY: fingerprint}
        try:
            api.configure_database_connection(client, mount, name, payload(wanted, verify, password, extra))
        except Exception as exc:  # noqa: BLE001
            fail_rejected(module, exc, "Writing %s/config/%s with the admin credential from %s" % (mount, name, source),
                          db.explain_connection_error(str(exc), where, source))
        if rotate:
            try:
                api.rotate_database_root_credentials(client, mount, name)
            except Exception as exc:  # noqa: BLE001
                undone = ""
                if plan.create:
                    try:
                        api.delete_database_connection(client, mount, name)
                        undone = "; the connection this task created was deleted again"
                    except Exception:  # noqa: BLE001 - reported below
                        undone = "; deleting the new connection failed too: delete %s/config/%s by hand" % (mount, name)
                module.fail_from(exc, "Rotating the root credential of %s/config/%s (the admin user needs to be able "
                                      "to change its own password)%s" % (mount, name, undone),
                                 changed=not (plan.create and undone.startswith("; the connection")), **result)
            result["root_rotated"] = True
            try:
                api.configure_database_connection(client, mount, name, {db.FINGERPRINT_KEY: fingerprint,
                                                                        db.ROTATED_AT_KEY: str(int(time.time()))})
            except Exception as exc:  # noqa: BLE001
                module.fail_from(exc, "Recording the admin fingerprint on %s/config/%s after the rotation (the next "
                                      "run would hand the rotated-away password over again and fail)" % (mount, name),
                                 changed=True, **result)
        return fingerprint
    try:
        api.configure_database_connection(client, mount, name, payload(wanted, verify))
    except Exception as exc:  # noqa: BLE001
        fail_rejected(module, exc, "Writing %s/config/%s" % (mount, name),
                      db.explain_connection_error(str(exc), where, "Vault's stored credential"))
    return plan.marker


def fail_rejected(module, exc, what, hint, **result):
    """Vault refused the write (its check of the connection failed): say why in the database's words, and what to do.
    Anything else (Vault unreachable, sealed, no permission) gets the shared message."""
    if exc.__class__.__name__ != "InvalidRequest":
        module.fail_from(exc, what, **result)
    result.setdefault("changed", False)
    result.update(module.endpoint_info())
    module.fail_json(msg="%s failed: Vault refused it (%s). %s" % (what, db.server_text(exc), hint), **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
