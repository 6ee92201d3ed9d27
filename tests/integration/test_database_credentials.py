"""Dynamic database credentials against a real PostgreSQL and a real 3-node OpenBao cluster (issue 17).

A cluster of its own for this file (the leader is killed at the end) and the session's PostgreSQL (tests/lib/
pgserver.py). The data is a copy of vault/ whose dev connection points at that PostgreSQL (loopback, TLS off); the
initial admin password lives in an ansible-vault file that configure.yml reads through configure_database_admin.

* configure.yml three ways (check, run at -vvv --diff, rerun changing nothing); afterwards the initial admin password
  no longer logs in (rotate-root ran right after the connection was created);
* an app's credential (a token with the app's policy, as its SecretStore gets) logs in and can do what its role
  allows and nothing more; another app's role is denied by Vault;
* revoking a lease, and a lease that expires, drop the user (pg_roles);
* vault_database_rotate_root by window and by force; the connection keeps working;
* bad input: unreachable database, wrong admin password, a statement PostgreSQL rejects, a TTL above the mount's
  maximum, an app naming an undeclared role: clear errors, nothing left behind;
* the audit report counts credential issuance per identity;
* the leader killed while vault_database_credentials issues: every credential is issued and logs in;
* no password (initial admin, issued ones) in any output.
"""

import json
import os
import secrets
import shutil
import sys
import time

import hvac
import hvac.exceptions
import pg8000.native
import pytest
import yaml

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault, vault_data
from heracles_faults import kill_leader, restart_and_unseal, wait_for
from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, find_leaks, run_module, start_module

for extra in (os.path.join(ROOT, "tests", "pulumi"), os.path.join(ROOT, "pulumi")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

# pylint: disable=wrong-import-position
import harness  # noqa: E402
import runs  # noqa: E402
from heracles_pulumi.vault_objects import pulumi_objects  # noqa: E402
from heracles_pulumi.vault_readback import object_differences, read_vault_objects  # noqa: E402

pytestmark = pytest.mark.slow

ENV = "dev"
MOUNT = "database-dev"
CONNECTION = "payments"
DATABASE = "payments"
ADMIN = "vault_admin"


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world(own_cluster, postgres, tmp_path_factory):
    """The data copy, the admin source and the PostgreSQL objects; nothing run yet."""
    base = tmp_path_factory.mktemp("dbcreds")
    admin_password = "initial-" + secrets.token_urlsafe(18)
    sfx = secrets.token_hex(3)
    database = "%s_%s" % (DATABASE, sfx)
    admin = "%s_%s" % (ADMIN, sfx)
    su = postgres.admin()
    su.run('CREATE ROLE "%s" WITH LOGIN CREATEROLE PASSWORD \'%s\'' % (admin, admin_password))
    su.run('CREATE DATABASE "%s" OWNER "%s"' % (database, admin))
    su.close()
    owner = postgres.connect(admin, admin_password, database)
    owner.run("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
    owner.run("INSERT INTO orders (item) VALUES ('first')")
    owner.close()

    data_dir = base / "vault"
    shutil.copytree(os.path.join(ROOT, "vault"), data_dir)
    env_file = data_dir / "environments" / ("%s.yml" % ENV)
    declared = yaml.safe_load(env_file.read_text())
    conn = declared["database"]["connections"][0]
    conn.update(host="127.0.0.1", port=postgres.port, database=database, username=admin, tls={"mode": "disable"})
    for app in declared["apps"]:
        for role in app.get("database") or []:
            if role["role"] == "orders-ro":  # short-lived: the expiry test waits for it
                role.update(default_ttl="4s", max_ttl="8s")
    env_file.write_text(yaml.safe_dump(declared, sort_keys=False))

    vault_pass = base / "vault-pass"
    vault_pass.write_text(secrets.token_urlsafe(16) + "\n")
    source = base / "payments-admin.vault"
    source.write_bytes(ansible_vault.encrypt(json.dumps({"password": admin_password}), vault_pass.read_text().strip()))
    os.chmod(str(source), 0o600)
    admin_source = dict(store="file", file=str(source), password_file=str(vault_pass))
    runner = Runner(base, dict(heracles_vault_connection=connection_vars(own_cluster), configure_environments=[ENV],
                               configure_data_dir=str(data_dir),
                               configure_database_admin={ENV: {CONNECTION: admin_source}}))
    return dict(cluster=own_cluster, pg=postgres, base=base, data_dir=str(data_dir), admin=admin,
                admin_password=admin_password, database=database, admin_source=admin_source, runner=runner,
                passwords=[admin_password], outputs=[])


@pytest.fixture(scope="module")
def configured(world):
    """configure.yml: --check first (changes nothing), then for real at -vvv --diff."""
    cluster = world["cluster"]
    proc = world["runner"].run("configure.yml", "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["changed"] > 0
    assert MOUNT + "/" not in cluster.hvac().sys.list_mounted_secrets_engines()["data"]
    started = time.time()
    proc = world["runner"].run("configure.yml", "-vvv", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    world["configure_seconds"] = time.time() - started
    return world


def app_client(world, app):
    """A token with exactly the app's policy: what its SecretStore's Kubernetes login gets."""
    root = world["cluster"].hvac()
    token = root.auth.token.create(policies=["%s-app-%s" % (ENV, app)], no_default_policy=True, ttl="10m",
                                   display_name="app-%s" % app)["auth"]["client_token"]
    return hvac.Client(url=world["cluster"].leader(), verify=world["cluster"].ca_cert, token=token)


def issue(world, app, role):
    resp = app_client(world, app).read("%s/creds/%s" % (MOUNT, role))
    world["passwords"].append(resp["data"]["password"])
    return resp


def sql(world, creds, statement):
    conn = world["pg"].connect(creds["data"]["username"], creds["data"]["password"], world["database"])
    try:
        return conn.run(statement)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------- tests
def test_configure_creates_rotates_and_a_rerun_changes_nothing(configured):
    root = configured["cluster"].hvac()
    config = root.read("%s/config/%s" % (MOUNT, CONNECTION))["data"]
    details = config["connection_details"]
    assert details["heracles_admin_fingerprint"].startswith("pbkdf2-sha256:")
    assert details["heracles_root_rotated_at"]
    assert sorted(config["allowed_roles"]) == ["orders-ro", "payments-rw"]
    assert sorted(root.list("%s/roles" % MOUNT)["data"]["keys"]) == ["orders-ro", "payments-rw"]
    proc = configured["runner"].run("configure.yml", "-vvv", "--diff")
    assert proc.returncode == 0 and recap(proc)["changed"] == 0, proc.stdout[-4000:]
    print("configure.yml with the database: %.1f s" % configured["configure_seconds"])


def test_what_configure_leaves_in_the_database_engine_is_what_pulumi_registers(configured):
    """Real read-back parity for the database kinds (test_parity_real's cluster has no database to reach): the
    engine with its lease TTLs, the connection (never a password; heracles' markers are not part of the shape) and
    every role on the mount, against pulumi/vault on the same data (openbao variant, under mocks)."""
    run = harness.run_program(
        "vault", ENV, overrides={"vaultDataDir": configured["data_dir"], "vaultFlavour": "openbao"},
        stack_outputs={"%s/heracles-platform/%s" % (runs.ORGANIZATION, ENV): runs.platform(ENV).outputs},
        calls={"aws:secretsmanager/getSecretVersion:getSecretVersion": runs.init_store_answer},
        environ={"VAULT_TOKEN": runs.VAULT_TOKEN})
    kinds = ("database_connection", "database_role")
    pulumi_side = dict((key, attributes) for key, attributes in pulumi_objects(
        [(res.type, harness.unwrap(res.inputs)) for res in run.resources if res.custom]).items()
        if key[0] in kinds or key == ("mount", MOUNT))
    root = configured["cluster"].hvac()

    def get(path):
        try:
            return root.adapter.get("/v1/" + path).get("data")
        except hvac.exceptions.InvalidPath:
            return None
    real = read_vault_objects(get, lambda kind, ident: kind == "mount" and ident == MOUNT)
    assert object_differences(pulumi_side, real) == []
    assert sorted(key[0] for key in real) == ["database_connection", "database_role", "database_role", "mount"]
    assert real[("mount", MOUNT)]["max_lease_ttl"] == 86400


def test_the_initial_admin_password_no_longer_logs_in(configured):
    assert not configured["pg"].can_login(configured["admin"], configured["admin_password"], configured["database"])


def test_an_apps_credential_does_what_its_role_allows_and_nothing_more(configured):
    rw = issue(configured, "payments", "payments-rw")
    assert rw["lease_duration"] == 3600 and rw["lease_id"].startswith(MOUNT + "/creds/payments-rw/")
    assert sql(configured, rw, "SELECT count(*) FROM orders")[0][0] >= 1
    sql(configured, rw, "INSERT INTO orders (item) VALUES ('by payments')")
    for forbidden in ("CREATE TABLE sneaky (x int)", "DROP TABLE orders", "ALTER TABLE orders ADD COLUMN x int"):
        with pytest.raises(pg8000.native.DatabaseError):
            sql(configured, rw, forbidden)
    ro = issue(configured, "orders", "orders-ro")
    assert sql(configured, ro, "SELECT item FROM orders ORDER BY id")[0][0] == "first"
    for forbidden in ("INSERT INTO orders (item) VALUES ('x')", "UPDATE orders SET item = 'x'", "DELETE FROM orders"):
        with pytest.raises(pg8000.native.DatabaseError, match="permission denied"):
            sql(configured, ro, forbidden)


def test_another_apps_role_is_denied_in_vault(configured):
    with pytest.raises(hvac.exceptions.Forbidden):
        app_client(configured, "payments").read("%s/creds/orders-ro" % MOUNT)
    with pytest.raises(hvac.exceptions.Forbidden):
        app_client(configured, "orders").read("%s/creds/payments-rw" % MOUNT)
    with pytest.raises(hvac.exceptions.Forbidden):  # nor the engine's configuration
        app_client(configured, "payments").read("%s/config/%s" % (MOUNT, CONNECTION))


def test_revocation_and_expiry_drop_the_user(configured):
    pg, root = configured["pg"], configured["cluster"].hvac()
    revoked = issue(configured, "payments", "payments-rw")
    expiring = issue(configured, "orders", "orders-ro")
    users = [revoked["data"]["username"], expiring["data"]["username"]]
    assert set(users) <= set(pg.roles())
    root.sys.revoke_lease(revoked["lease_id"])
    assert revoked["data"]["username"] not in pg.roles()
    assert not pg.can_login(revoked["data"]["username"], revoked["data"]["password"], configured["database"])
    assert expiring["lease_duration"] == 4
    wait_for("the expired lease's user to be dropped", lambda: expiring["data"]["username"] not in pg.roles(),
             timeout=30, interval=0.5)


def test_root_rotation_by_window_and_by_force(configured):
    conn = configured["cluster"].conn(mount=MOUNT, window="30d")
    res = run_module("vault_database_rotate_root", conn, check=True)
    assert not res.failed and res["changed"] is False and [c["name"] for c in res["in_window"]] == [CONNECTION], res
    res = run_module("vault_database_rotate_root", dict(conn, force=True))
    assert not res.failed and res["changed"] is True and [c["name"] for c in res["rotated"]] == [CONNECTION], res
    creds = issue(configured, "payments", "payments-rw")  # Vault still reaches the database with its new password
    assert sql(configured, creds, "SELECT 1")[0][0] == 1
    configured["outputs"].append(("rotate_root", res.stdout + res.stderr))


def test_a_new_admin_password_in_the_source_is_drift_and_is_handed_over_again(configured, tmp_path):
    """An operator resets the admin password (Vault lost it, or policy): a new value in the source differs from the
    fingerprint, so the next run hands it over and rotates again; the old fingerprint is replaced."""
    pg, root = configured["pg"], configured["cluster"].hvac()
    reset = "reset-" + secrets.token_urlsafe(18)
    configured["passwords"].append(reset)
    su = pg.admin()
    su.run('ALTER ROLE "%s" WITH PASSWORD \'%s\'' % (configured["admin"], reset))
    su.close()
    before = root.read("%s/config/%s" % (MOUNT, CONNECTION))["data"]["connection_details"]["heracles_admin_fingerprint"]
    source = dict(configured["admin_source"], file=str(tmp_path / "reset.vault"))
    with open(configured["admin_source"]["password_file"]) as handle:
        vault_password = handle.read().strip()
    (tmp_path / "reset.vault").write_bytes(ansible_vault.encrypt(json.dumps({"password": reset}), vault_password))
    args = configured["cluster"].conn(mount=MOUNT, name=CONNECTION, admin_source=source, username=configured["admin"],
                                      allowed_roles=["orders-ro", "payments-rw"],
                                      connection_url=vault_data.load_databases(configured["data_dir"], ENV)
                                      ["connections"][0]["connection_url"])
    check = run_module("vault_database_connection", args, check=True, diff=True)
    assert not check.failed and check["changed"] and check["updated"] == ["admin_password"], check
    res = run_module("vault_database_connection", args, diff=True)
    assert not res.failed and res["root_rotated"] and res["admin_fingerprint"] != before, res
    assert not pg.can_login(configured["admin"], reset, configured["database"])
    again = run_module("vault_database_connection", args, diff=True)
    assert not again.failed and again["changed"] is False, again
    configured["outputs"].extend(("connection %s" % r, r.stdout + r.stderr) for r in (check, res, again))


@pytest.mark.parametrize("case", ["unreachable", "wrong-password"])
def test_a_connection_vault_cannot_use_fails_clearly_and_leaves_nothing(configured, case, tmp_path):
    pg, root = configured["pg"], configured["cluster"].hvac()
    wrong = "wrong-" + secrets.token_urlsafe(12)
    configured["passwords"].append(wrong)
    with open(configured["admin_source"]["password_file"]) as handle:
        vault_password = handle.read().strip()
    (tmp_path / "wrong.vault").write_bytes(ansible_vault.encrypt(wrong, vault_password))
    port = pg.port if case == "wrong-password" else 9  # discard: nothing listens
    name = "broken-%s" % case
    res = run_module("vault_database_connection", configured["cluster"].conn(
        mount=MOUNT, name=name, username=configured["admin"], allowed_roles=["nobody"],
        connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:%d/%s?sslmode=disable" % (port, configured["database"]),
        admin_source=dict(configured["admin_source"], file=str(tmp_path / "wrong.vault"))), diff=True)
    assert res.failed and res.get("changed") is False, res
    expect = {"unreachable": "cannot reach 127.0.0.1:9", "wrong-password": "does not log in"}[case]
    assert expect in res["msg"] and "nothing was changed" in res["msg"], res["msg"]
    assert name not in (root.list("%s/config" % MOUNT)["data"]["keys"])
    assert find_leaks([wrong], [("result", res.stdout + res.stderr)]) == []


def test_a_role_postgresql_rejects_fails_with_its_words_and_is_not_left(configured):
    roles = configured["cluster"].hvac().list("%s/roles" % MOUNT)["data"]["keys"]
    bad = dict(name="payments-rw", db_name=CONNECTION, default_ttl="1h", max_ttl="4h",
               creation_statements=['CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\';',
                                    'GRANT SELECT ON no_such_table TO "{{name}}";'],
               revocation_statements=['DROP ROLE IF EXISTS "{{name}}";'])
    before = configured["cluster"].hvac().read("%s/roles/payments-rw" % MOUNT)["data"]
    res = run_module("vault_database_roles", configured["cluster"].conn(mount=MOUNT, roles=[bad]))
    assert res.failed and res.get("changed") is False, res
    assert 'relation "no_such_table" does not exist' in res["msg"] and "put back as they were" in res["msg"], res["msg"]
    after = configured["cluster"].hvac().read("%s/roles/payments-rw" % MOUNT)["data"]
    assert after == before and configured["cluster"].hvac().list("%s/roles" % MOUNT)["data"]["keys"] == roles


def test_a_ttl_above_the_mounts_max_is_refused_before_any_write(configured):
    role = dict(name="payments-long", db_name=CONNECTION, default_ttl="1h", max_ttl="48h",
                creation_statements=['CREATE ROLE "{{name}}";'])
    res = run_module("vault_database_roles", configured["cluster"].conn(mount=MOUNT, roles=[role]))
    assert res.failed and "above the mount's max_lease_ttl 86400s" in res["msg"], res
    assert "payments-long" not in configured["cluster"].hvac().list("%s/roles" % MOUNT)["data"]["keys"]


def test_an_app_naming_an_undeclared_role_stops_configure_before_any_change(configured, tmp_path):
    data_dir = tmp_path / "vault"
    shutil.copytree(configured["data_dir"], data_dir)
    env_file = data_dir / "environments" / ("%s.yml" % ENV)
    declared = yaml.safe_load(env_file.read_text())
    declared["apps"][0]["database"].append({"role": "payments-admin", "access": "read-write"})
    declared["database"]["max_ttl"] = "48h"  # would be a change if anything were applied
    env_file.write_text(yaml.safe_dump(declared, sort_keys=False))
    proc = configured["runner"].run("configure.yml", "-e", json.dumps({"configure_data_dir": str(data_dir)}))
    assert proc.returncode != 0
    assert "database role 'payments-admin' is not declared" in proc.stdout, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 0
    tune = configured["cluster"].hvac().adapter.get("/v1/sys/mounts/%s/tune" % MOUNT)["data"]
    assert tune["max_lease_ttl"] == 86400


def test_the_audit_report_counts_credential_issuance_per_identity(configured, tmp_path):
    issue(configured, "orders", "orders-ro")
    logs = os.path.join(configured["cluster"].base_dir, "node*", "audit", "audit.log")
    res = run_module("vault_audit_report", dict(paths=[logs]))
    assert not res.failed, res.get("msg")
    creds = res["report"]["credentials"]
    by_identity = dict((row["identity"], row) for row in creds["identities"])
    assert by_identity["token-app-orders"]["issued"] >= 2 and by_identity["token-app-payments"]["issued"] >= 3, creds
    assert by_identity["token-app-orders"]["roles"] == {MOUNT + "/creds/orders-ro": by_identity["token-app-orders"]["issued"]}
    assert creds["count"] == sum(row["issued"] for row in creds["identities"])
    assert any(line.startswith("credentials:") for line in res["summary"])
    configured["outputs"].append(("audit report", res.stdout + res.stderr))


def test_rotate_yml_rotates_root_credentials_by_window_only(configured):
    """rotate.yml's database step: inside the window (30d) nothing, with rotate_force the root credential."""
    runner = configured["runner"]
    extra = json.dumps({"rotate_environments": [ENV], "rotate_data_dir": configured["data_dir"],
                        "rotate_encryption_key": False, "rotate_consumers": False})

    def stamp():
        return configured["cluster"].hvac().read(
            "%s/config/%s" % (MOUNT, CONNECTION))["data"]["connection_details"]["heracles_root_rotated_at"]
    proc = runner.run("seed.yml", "-e", json.dumps({"seed_environments": [ENV], "seed_data_dir": configured["data_dir"]}))
    assert proc.returncode == 0, proc.stdout[-3000:]  # rotate.yml rotates the seeded KV fields too
    before = stamp()
    proc = runner.run("rotate.yml", "-e", extra, "-e", "rotate_force=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "database root credentials rotated: none" in proc.stdout and stamp() == before
    time.sleep(1.1)
    proc = runner.run("rotate.yml", "-e", extra, "-e", "rotate_force=true")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "database root credentials rotated: ['%s']" % CONNECTION in proc.stdout and stamp() != before


def test_leak_response_revokes_the_apps_leases_and_rotates_the_connections_root(configured, tmp_path):
    pg = configured["pg"]
    held = [issue(configured, "payments", "payments-rw") for dummy in range(3)]
    other = issue(configured, "orders", "orders-ro")
    before = configured["cluster"].hvac().read("%s/config/%s" % (MOUNT, CONNECTION))["data"]["connection_details"]
    proc = configured["runner"].run("leak-response.yml", "-e", json.dumps({
        "leak_incident": "INC-DB-1", "leak_database_app": "payments", "leak_database_environment": ENV,
        "leak_data_dir": configured["data_dir"], "leak_record_dir": str(tmp_path)}))
    assert proc.returncode == 0, proc.stdout[-3000:]
    users = pg.roles()
    assert not [c for c in held if c["data"]["username"] in users]
    after = configured["cluster"].hvac().read("%s/config/%s" % (MOUNT, CONNECTION))["data"]["connection_details"]
    assert after["heracles_root_rotated_at"] >= before["heracles_root_rotated_at"]
    with open(str(tmp_path / "INC-DB-1.json")) as handle:
        record = json.load(handle)
    assert record["database_roots_rotated"] == [CONNECTION] and record["secret"] is None
    assert record["database_leases_revoked"][0]["prefix"] == "%s/creds/payments-rw" % MOUNT
    assert record["database_leases_revoked"][0]["leases"] >= 3
    assert other["lease_duration"] == 4  # the other app's credential was not touched (it expires on its own)


def test_a_leader_killed_during_issuance_is_survived(configured):
    cluster, pg = configured["cluster"], configured["pg"]
    count = 60
    before = set(pg.roles("v-"))
    run = start_module("vault_database_credentials", cluster.conn(mount=MOUNT, database_role="payments-rw", count=count,
                                                                  concurrency=2))
    try:
        wait_for("credentials being issued", lambda: len(set(pg.roles("v-")) - before) >= 10 or not run.running(),
                 timeout=60, interval=0.05)
        assert run.running(), "issuance finished before the leader could be killed"
        old = kill_leader(cluster)
    finally:
        res = run.wait(timeout=300)
    assert not res.failed, res.get("msg")
    assert any(move["from"] == old for move in res["leader_changes"]), res["leader_changes"]
    issued = res["issued"]
    assert len(issued) == count and len(set(c["username"] for c in issued)) == count
    assert set(c["username"] for c in issued) <= set(pg.roles("v-"))
    configured["outputs"].append(("credentials", res.stdout + res.stderr))
    restart_and_unseal(cluster, old)


def test_no_password_in_any_output(configured):
    outputs = list(configured["runner"].outputs) + list(configured["outputs"])
    assert len(outputs) >= 4
    assert find_leaks(configured["passwords"], outputs) == []
