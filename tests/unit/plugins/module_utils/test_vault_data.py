"""The declared configuration under vault/ and its loader (shared by Ansible and Pulumi)."""

import os
import shutil

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import (
    BACKUP_ROLE, ROTATOR_ROLE, VaultDataError, load, render)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
DATA = os.path.join(ROOT, "vault")


def test_repository_data_loads_for_every_environment():
    desired = load(DATA, ["dev", "staging", "prod"])
    assert [m["path"] for m in desired["mounts"] if m["type"] == "kv"] == ["kv-dev", "kv-staging", "kv-prod"]
    assert [a["path"] for a in desired["auth"]] == ["kubernetes-dev", "kubernetes-staging", "kubernetes-prod"]
    assert "heracles-strong" in desired["password_policies"]


@pytest.mark.parametrize("env,developer", [("dev", True), ("staging", False), ("prod", False)])
def test_developers_only_in_dev(env, developer):
    assert ("%s-developer" % env in load(DATA, [env])["policies"]) is developer


def kv_config(desired):
    return [m for m in desired["mounts"] if m["type"] == "kv"][0]["kv_config"]


def max_ttl(desired):
    return desired["auth"][0]["roles"][0]["token_max_ttl"]


def test_prod_is_stricter_than_dev():
    dev, prod = load(DATA, ["dev"]), load(DATA, ["prod"])
    assert kv_config(prod)["cas_required"] is True and kv_config(dev)["cas_required"] is False
    assert max_ttl(prod) == "1h" and max_ttl(dev) == "4h"


def test_app_policy_reads_only_its_own_path():
    hcl = load(DATA, ["prod"])["policies"]["prod-app-payments"]
    assert 'path "kv-prod/data/apps/payments/*"' in hcl
    body = "\n".join(line for line in hcl.splitlines() if not line.startswith("#"))
    assert 'capabilities = ["read"]' in body and "update" not in body and "list" not in body and "orders" not in body


def test_roles_bind_service_account_namespace_audience_and_policy():
    role = [r for r in load(DATA, ["dev"])["auth"][0]["roles"] if r["name"] == "orders"][0]
    assert role["bound_service_account_names"] == ["orders"]
    assert role["bound_service_account_namespaces"] == ["orders"]
    assert role["audience"] == "vault" and role["policies"] == ["dev-app-orders"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_backup_role_reads_raft_snapshots_only(env):
    desired = load(DATA, [env])
    [role] = [r for r in desired["auth"][0]["roles"] if r["name"] == BACKUP_ROLE]
    assert role["bound_service_account_names"] == ["vault-backup"]
    assert role["bound_service_account_namespaces"] == ["vault"]
    assert role["policies"] == ["%s-backup" % env] and role["token_no_default_policy"] is True
    assert (role["token_ttl"], role["token_max_ttl"]) == ("5m", "15m")
    body = [line.strip() for line in desired["policies"]["%s-backup" % env].splitlines()
            if line.strip() and not line.startswith("#")]
    assert body == ['path "sys/storage/raft/snapshot" {', 'capabilities = ["read"]', "}"]
    # no other role gets the backup policy, and the backup role's token_no_default_policy is its own
    others = [r for r in desired["auth"][0]["roles"] if r["name"] != BACKUP_ROLE]
    assert all("%s-backup" % env not in r["policies"] for r in others)
    # the other job (rotation) has no default policy either; the apps' roles keep Vault's default
    assert [r["name"] for r in others if "token_no_default_policy" in r] == [ROTATOR_ROLE]


@pytest.fixture()
def data(tmp_path):
    dest = tmp_path / "vault"
    shutil.copytree(DATA, str(dest))
    return dest


@pytest.mark.parametrize("edit,why", [
    (lambda d: (d / "policies" / "app.hcl").write_text('path "${kv}/data/${nope}" {}'), "${nope}"),
    (lambda d: (d / "environments" / "dev.yml").write_text("environment: prod\nkv: {path: kv}\nkubernetes: {path: k}\n"),
     "expected 'dev'"),
    (lambda d: (d / "environments" / "dev.yml").write_text("environment: dev\nkubernetes: {path: k}\n"), "kv.path is required"),
    (lambda d: os.unlink(str(d / "policies" / "app.hcl")), "cannot read"),
    (lambda d: os.unlink(str(d / "policies" / "backup.hcl")), "cannot read"),
    (lambda d: (d / "environments" / "dev.yml").write_text(
        "environment: dev\nkv: {path: kv}\nkubernetes: {path: k}\nbackup: {namespace: vault}\n"),
     "backup.service_account is required"),
])
def test_bad_data_is_a_clear_error(data, edit, why):
    edit(data)
    with pytest.raises(VaultDataError) as err:
        load(str(data), ["dev"])
    assert why in str(err.value)


def test_unknown_environment(data):
    with pytest.raises(VaultDataError, match="no declared environment 'qa'"):
        load(str(data), ["qa"])


def test_render_is_strict():
    assert render("a ${x} b", {"x": "1"}, "t") == "a 1 b"
    with pytest.raises(VaultDataError):
        render("${y}", {}, "t")
