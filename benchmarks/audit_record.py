# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record real audit lines: known traffic on a running cluster, read back from every node's file audit device.

The traffic covers what the report counts: userpass logins (entities, metadata), KV v2 writes and reads by the
logged-in users and by a token with metadata, denied reads, a policy write sent to a standby (the standby logs it
as ``cannot write to readonly storage`` and forwards it), and sys calls by the root token.  ``record`` returns
the lines the cluster logged while it ran (only those: the logs are read from their size before the traffic).

    .venv/bin/python benchmarks/audit_record.py benchmarks/data/audit-sample.jsonl

starts a throwaway cluster, records, and writes the lines there (its HMAC key dies with the cluster).
"""

from __future__ import absolute_import, division, print_function

import glob
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import hvac  # noqa: E402
import hvac.exceptions  # noqa: E402

import methods  # noqa: E402
from methods import ROOT, BenchError  # noqa: E402

KV = "b-audit-kv"
USERPASS = "b-audit-userpass"
POLICY = "b-audit-app"
USERS = ("alice", "bob")
SAMPLE = os.path.join(HERE, "data", "audit-sample.jsonl")


def audit_logs(base_dir):
    """Every node's audit file of a LocalCluster in ``base_dir`` (``nodeN/audit/audit.log``)."""
    return sorted(glob.glob(os.path.join(base_dir, "node*", "audit", "audit.log")))


def _sizes(paths):
    return dict((path, os.path.getsize(path)) for path in paths)


def _lines_since(sizes):
    lines = []
    for path, offset in sorted(sizes.items()):
        with open(path, "rb") as handle:
            handle.seek(offset)
            lines.extend(line.decode("utf-8") for line in handle.read().splitlines() if line.strip())
    return lines


def _setup(root):
    """A KV v2 mount, a userpass mount with two users and an app policy (not in the recording)."""
    methods.enable_kv2(root, KV)
    root.sys.enable_auth_method("userpass", path=USERPASS)
    root.sys.create_or_update_policy(POLICY, 'path "%s/data/apps/web/*" { capabilities = ["create", "update", "read"] }'
                                     % KV)
    for user in USERS:
        root.auth.userpass.create_or_update_user(user, password="pw-" + user, policies=[POLICY], mount_point=USERPASS)


def _user_traffic(client, user):
    client.auth.userpass.login(user, "pw-" + user, mount_point=USERPASS)
    for name in ("db", "api"):
        client.secrets.kv.v2.create_or_update_secret("apps/web/%s-%s" % (user, name), secret={"password": "x-" + name},
                                                     mount_point=KV)
        client.secrets.kv.v2.read_secret_version("apps/web/%s-%s" % (user, name), mount_point=KV,
                                                 raise_on_deleted_version=True)
    for path in ("apps/other/db", "apps/payments/key"):
        try:
            client.secrets.kv.v2.read_secret_version(path, mount_point=KV, raise_on_deleted_version=True)
        except hvac.exceptions.Forbidden:
            pass
    client.auth.token.lookup_self()


def _traffic(urls, leader, ca_cert, root_token):
    root = hvac.Client(url=leader, verify=ca_cert, token=root_token)
    for user in USERS:
        _user_traffic(hvac.Client(url=leader, verify=ca_cert), user)
    token = root.auth.token.create(policies=[POLICY], display_name="webapp", meta={"app": "web"})["auth"]["client_token"]
    app = hvac.Client(url=leader, verify=ca_cert, token=token)
    app.secrets.kv.v2.read_secret_version("apps/web/alice-db", mount_point=KV, raise_on_deleted_version=True)
    try:
        app.sys.list_mounted_secrets_engines()
    except hvac.exceptions.Forbidden:
        pass
    root.sys.list_mounted_secrets_engines()
    root.sys.list_policies()
    root.sys.read_policy(POLICY)
    standby = hvac.Client(url=[u for u in urls if u != leader][0], verify=ca_cert, token=root_token)
    standby.sys.create_or_update_policy(POLICY + "-2", 'path "%s/data/apps/api/*" { capabilities = ["read"] }' % KV)


def record(urls, leader, ca_cert, root_token, base_dir):
    """Make the traffic on a running cluster and return the audit lines it logged on every node."""
    _setup(hvac.Client(url=leader, verify=ca_cert, token=root_token))
    sizes = _sizes(audit_logs(base_dir))
    if not sizes:
        raise BenchError("no audit log under %s" % base_dir)
    _traffic(urls, leader, ca_cert, root_token)
    time.sleep(0.5)  # the audit device writes the response line after the answer is sent
    return _lines_since(sizes)


def load_sample(path=SAMPLE):
    with open(path) as handle:
        return [line for line in handle.read().splitlines() if line.strip()]


def main(argv):
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    from heracles_testlib import ClusterHandle  # pylint: disable=import-outside-toplevel

    out = argv[1] if len(argv) > 1 else SAMPLE
    with tempfile.TemporaryDirectory(prefix="heracles-audit-record-") as workdir:
        handle = ClusterHandle(workdir).start()
        try:
            handle.bootstrap()
            lines = record(handle.urls, handle.leader(), handle.ca_cert, handle.root_token, handle.base_dir)
        finally:
            handle.stop()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("%d lines -> %s" % (len(lines), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
