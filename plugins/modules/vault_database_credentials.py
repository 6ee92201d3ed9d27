#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_database_credentials
short_description: Issue dynamic database credentials of a role, kept only in an encrypted file
version_added: "0.2.0"
description:
  - Issues O(count) credentials of role O(database_role) (C(GET /v1/<mount>/creds/<role>)), O(concurrency) at a time, over one
    pooled, leader-following client, so a leader lost mid-way is followed to the new one and the request retried.
  - The passwords never reach the task's result. With O(dest) the credentials (username, password, lease id and TTL)
    are written to an ansible-vault (AES256) file, mode 0600, for a job or an operator that needs one (a migration,
    break-glass access); without it only usernames and lease ids are returned (a check that the role works, and what
    the benchmarks measure).
  - Every credential is a new lease, so every run that issues is a change. A retried request whose first answer was
    lost with a dying leader may have created a user nobody holds; its lease (if Vault stored it) revokes it at its
    TTL, and PostgreSQL's C(VALID UNTIL) ends it in any case.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_database_roles
  - module: heracles.secrets.vault_revoke
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reports that credentials would be issued; issues nothing.
  diff_mode:
    support: none
    description: Credentials are new objects; nothing is compared.
options:
  mount:
    description: Path of the database secrets engine.
    type: str
    required: true
  database_role:
    description:
      - The database role to issue credentials of.
      - Not O(role), which is the login role of O(auth_method=kubernetes) or O(auth_method=approle).
    type: str
    required: true
  count:
    description: How many credentials.
    type: int
    default: 1
  concurrency:
    description: Requests in flight at once.
    type: int
    default: 4
  dest:
    description: ansible-vault file to write the credentials to (JSON list inside), mode 0600, replaced atomically.
    type: path
  dest_password_file:
    description: File with the ansible-vault password for O(dest).
    type: path
"""

EXAMPLES = r"""
- name: A credential for a schema migration, kept encrypted
  heracles.secrets.vault_database_credentials:
    mount: database-prod
    database_role: payments-rw
    dest: /run/heracles/migration-credential.vault
    dest_password_file: ~/.vault-pass
"""

RETURN = r"""
issued:
  description: The credentials issued, without passwords.
  returned: always
  type: list
  elements: dict
  sample: [{username: v-token-payments-rw-x1y2z3, lease_id: database-prod/creds/payments-rw/AbCd, lease_duration: 3600}]
seconds:
  description: Time spent issuing.
  returned: always
  type: float
dest:
  description: Where the credentials were written.
  returned: when O(dest) is set
  type: str
"""

import json
import os
import tempfile
import threading
import time

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault
from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule


def issue_many(client, mount, role, count, concurrency):
    """``count`` credentials over ``concurrency`` threads sharing the client; raises the first failure."""
    out, errors, lock = [None] * count, [], threading.Lock()
    todo = list(range(count))

    def work():
        while True:
            with lock:
                if not todo or errors:
                    return
                index = todo.pop()
            try:
                out[index] = api.generate_database_credentials(client, mount, role)
            except Exception as exc:  # noqa: BLE001 - re-raised below
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=work) for dummy in range(max(1, min(concurrency, count)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return out


def write_encrypted(path, password, credentials):
    directory = os.path.dirname(os.path.abspath(path))
    blob = ansible_vault.encrypt(json.dumps(credentials, sort_keys=True), password)
    fd, tmp = tempfile.mkstemp(prefix=".creds-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", required=True),
            database_role=dict(type="str", required=True),
            count=dict(type="int", default=1),
            concurrency=dict(type="int", default=4),
            dest=dict(type="path"),
            dest_password_file=dict(type="path", no_log=False),
        ),
        required_together=[("dest", "dest_password_file")],
        supports_check_mode=True,
    )
    p = module.params
    if p["count"] < 1 or p["concurrency"] < 1:
        module.fail_json(msg="count and concurrency must be at least 1; nothing was issued")
    vault_password = None
    if p["dest"]:
        if not os.path.isdir(os.path.dirname(os.path.abspath(p["dest"]))):
            module.fail_json(msg="the directory of dest %s does not exist; create it (mode 0700); nothing was issued"
                                 % p["dest"])
        try:
            with open(p["dest_password_file"], "rb") as handle:
                vault_password = handle.read().strip()
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot read dest_password_file %s: %s; nothing was issued"
                                 % (p["dest_password_file"], exc.strerror))
        if not vault_password:
            module.fail_json(msg="dest_password_file %s is empty; nothing was issued" % p["dest_password_file"])
    mount, role = p["mount"].strip("/"), p["database_role"].strip("/")
    client = module.client
    if module.check_mode:
        module.exit_ok(changed=True, issued=[], seconds=0.0)
    started = time.time()
    try:
        credentials = issue_many(client, mount, role, p["count"], p["concurrency"])
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Issuing credentials of %s/creds/%s" % (mount, role))
    seconds = round(time.time() - started, 3)
    issued = [dict(username=c["username"], lease_id=c["lease_id"], lease_duration=c["lease_duration"])
              for c in credentials]
    result = dict(changed=True, issued=issued, seconds=seconds)
    if p["dest"]:
        try:
            write_encrypted(p["dest"], vault_password, credentials)
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot write %s: %s; revoke the issued leases (%s/creds/%s) with vault_revoke"
                                 % (p["dest"], exc, mount, role), changed=True, issued=issued)
        result["dest"] = p["dest"]
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
