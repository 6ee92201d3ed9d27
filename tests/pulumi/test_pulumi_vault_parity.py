"""Both appliers of vault/ produce the same objects: roles/configure (Ansible) and pulumi/vault (pulumi-vault).

For each stack, the pulumi/vault program runs under mocks and the pulumi-vault resources it registered are
mapped to ``{(kind, id): attributes}`` (``vault_objects.pulumi_objects``). The Ansible side is the same
``vault_data.load()`` output mapped the way roles/configure applies it (``vault_objects.ansible_objects``),
with the per-deployment settings of inventories/<env>/group_vars/all.yml. The maps must be equal.
"""

import json
import shutil

import pytest
import yaml

import harness
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from harness import inventory, plaintext_strings, unwrap
from heracles_pulumi.vault_objects import KINDS, ansible_objects, duration_seconds, pulumi_objects
import runs
from runs import INIT_ROOT_TOKEN, VAULT_TOKEN, vault_project

DATA_DIR = harness.os.path.join(harness.REPO_ROOT, "vault")
CONFIGURE_TASKS = harness.os.path.join(harness.REPO_ROOT, "roles", "configure", "tasks", "main.yml")


def registered(run):
    return pulumi_objects([(res.type, unwrap(res.inputs)) for res in run.resources if res.custom])


def ansible_side(environment, data_dir=DATA_DIR, audit_file_path=None):
    group_vars = inventory(environment)
    path = group_vars["configure_audit_file_path"] if audit_file_path is None else audit_file_path
    return ansible_objects(vault_data.load(data_dir, [environment]), path, group_vars.get("configure_kubernetes"),
                           group_vars.get("configure_database_admin"))


def test_both_appliers_produce_the_same_objects(stack):
    pulumi_side = registered(vault_project(stack))
    expected = ansible_side(stack)
    missing, extra = sorted(set(expected) - set(pulumi_side)), sorted(set(pulumi_side) - set(expected))
    assert not missing and not extra, "pulumi/vault lacks %s and adds %s compared with roles/configure" % (missing, extra)
    for key, attributes in expected.items():
        assert pulumi_side[key] == attributes, key
    # the comparison covers every kind of object the data declares, and is not trivially small
    assert {key[0] for key in expected} == set(KINDS)
    assert len(expected) >= 15
    # the platform's backup job can log in on both: its role (no default policy) and its snapshot-only policy
    backup = expected[("kubernetes_role", "kubernetes-%s/vault-backup" % stack)]
    assert backup["policies"] == ["%s-backup" % stack] and backup["token_no_default_policy"] is True
    assert ("acl_policy", "%s-backup" % stack) in expected


def test_openbao_without_api_audit_devices_on_both_sides(stack):
    pulumi_side = registered(vault_project(stack, "openbao"))
    assert pulumi_side == ansible_side(stack, audit_file_path="")
    assert not [key for key in pulumi_side if key[0] == "audit"]


def test_a_change_in_the_data_reaches_both_sides(stack, tmp_path):
    """Declare one more application in a copy of vault/: both sides gain exactly its role and policy."""
    data_dir = tmp_path / "vault"
    shutil.copytree(DATA_DIR, data_dir)
    env_file = data_dir / "environments" / ("%s.yml" % stack)
    declared = yaml.safe_load(env_file.read_text())
    declared["apps"].append({"name": "ledger", "namespace": "ledger", "service_account": "ledger"})
    env_file.write_text(yaml.safe_dump(declared))

    run = vault_with_data(stack, data_dir)
    changed = registered(run)
    assert changed == ansible_side(stack, data_dir=str(data_dir))
    added = set(changed) - set(ansible_side(stack))
    assert added == {("acl_policy", "%s-app-ledger" % stack), ("kubernetes_role", "kubernetes-%s/ledger" % stack)}


def test_dropping_the_backup_identity_removes_its_role_and_policy_on_both_sides(stack, tmp_path):
    data_dir = tmp_path / "vault"
    shutil.copytree(DATA_DIR, data_dir)
    env_file = data_dir / "environments" / ("%s.yml" % stack)
    declared = yaml.safe_load(env_file.read_text())
    del declared["backup"]
    env_file.write_text(yaml.safe_dump(declared))

    run = vault_with_data(stack, data_dir)
    changed = registered(run)
    assert changed == ansible_side(stack, data_dir=str(data_dir))
    removed = set(ansible_side(stack)) - set(changed)
    assert removed == {("acl_policy", "%s-backup" % stack), ("kubernetes_role", "kubernetes-%s/vault-backup" % stack)}


def vault_with_data(stack, data_dir):
    """pulumi/vault on another data directory, wired to the platform run like runs.vault_project."""
    return harness.run_program(
        "vault", stack, overrides={"vaultDataDir": str(data_dir)},
        stack_outputs={"%s/heracles-platform/%s" % (runs.ORGANIZATION, stack): runs.platform(stack).outputs},
        calls={"aws:secretsmanager/getSecretVersion:getSecretVersion": runs.init_store_answer},
        environ={"VAULT_TOKEN": VAULT_TOKEN})


def test_the_vault_stack_reads_the_platform_outputs_and_no_secret_config(stack):
    run = vault_project(stack)
    provider = unwrap(run.one("pulumi:providers:vault").inputs)
    platform = runs.platform(stack)
    # the endpoint and the Kubernetes host are the platform's outputs, not config of this stack
    assert provider["address"] == platform.outputs["vaultEndpoint"]
    configs = [unwrap(res.inputs) for res in run.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")]
    assert configs and {c["kubernetesHost"] for c in configs} == {platform.outputs["kubernetesHost"]}
    assert all("tokenReviewerJwt" not in c and "kubernetesCaCert" not in c for c in configs)  # Vault's own SA
    # the CA file and audit path are the deployment facts the inventory uses too
    facts = vault_data.load_deployment(DATA_DIR, stack)
    assert provider["caCertFile"] == facts["vault"]["ca_cert_file"] == inventory(stack)["heracles_vault_connection"]["ca_cert"]
    # the operator's token comes from VAULT_TOKEN: the provider reads it, nothing holds it
    assert "token" not in provider
    for res in run.resources:
        assert VAULT_TOKEN not in json.dumps(res.inputs)
    assert not [key for key, decl in harness.project_schema("vault")[1].items() if decl.get("secret")]


def test_the_root_token_from_the_init_store_stays_a_pulumi_secret(stack):
    run = vault_project(stack, "init-store")
    assert {call[0] for call in run.calls} == {"aws:secretsmanager/getSecretVersion:getSecretVersion"}
    admin_secrets = {conn["admin_secret"] for db in vault_data.load(DATA_DIR, [stack])["databases"]
                     for conn in db["connections"]}
    assert sorted(call[1]["secretId"] for call in run.calls) == sorted(
        [vault_data.load_deployment(DATA_DIR, stack)["init_store"]["secret_name"]] + sorted(admin_secrets))
    provider = run.one("pulumi:providers:vault").inputs
    assert unwrap(provider["token"]) == INIT_ROOT_TOKEN and not list(plaintext_strings(provider["token"]))
    for res in run.resources:
        for path, text in plaintext_strings(res.inputs):
            assert INIT_ROOT_TOKEN not in text, "%s %s.%s holds the root token in plaintext" % (res.type, res.name, path)


def test_without_a_token_the_program_says_how_to_give_one():
    with pytest.raises(ValueError, match="export VAULT_TOKEN="):
        harness.run_program("vault", "dev", stack_outputs={
            "%s/heracles-platform/dev" % runs.ORGANIZATION: runs.platform("dev").outputs}, environ={"VAULT_TOKEN": ""})


def test_the_configure_role_applies_what_the_mapping_assumes():
    """ansible_objects mirrors roles/configure task by task: same modules, same loops over the loaded data."""
    with open(CONFIGURE_TASKS) as handle:
        tasks = yaml.safe_load(handle)
    calls = []
    for task in tasks:
        module = [key for key in task if key.startswith("heracles.secrets.")
                  or key in ("ansible.builtin.set_fact", "ansible.builtin.debug")][0]
        calls.append((module, task.get("loop", "")))
    assert calls == [
        ("ansible.builtin.set_fact", ""),
        ("heracles.secrets.vault_policy", ""),
        ("heracles.secrets.vault_mount", "{{ configure_desired.mounts }}"),
        ("heracles.secrets.vault_policy", ""),
        ("heracles.secrets.vault_auth_kubernetes", "{{ configure_desired.auth }}"),
        ("ansible.builtin.debug", "{{ configure_desired.databases | subelements('connections') }}"),
        ("heracles.secrets.vault_database_connection", "{{ configure_desired.databases | subelements('connections') }}"),
        ("heracles.secrets.vault_database_roles", "{{ configure_desired.databases }}"),
        ("heracles.secrets.vault_audit", "{{ configure_desired.audit }}"),
    ]
    assert tasks[1]["heracles.secrets.vault_policy"]["policy_type"] == "password"
    assert tasks[8]["when"] == "configure_audit_file_path | length > 0"
    # connections only with an admin source (ansible_objects' database_admin), roles of those connections only
    assert tasks[6]["when"] == "item.1.name in (configure_database_admin[item.0.environment] | default({}))"
    assert "configure_database_admin[item.environment]" in tasks[7]["vars"]["configure_db_roles"]
    assert tasks[7]["heracles.secrets.vault_database_roles"]["exclusive"] is True
    assert tasks[4]["heracles.secrets.vault_auth_kubernetes"]["exclusive_roles"] is True


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("1h", 3600), ("1h30m", 5400), ("3600", 3600), (120, 120),
                                           (None, None)])
def test_durations_compare_by_value(text, seconds):
    assert duration_seconds(text) == seconds


def test_an_unmapped_vault_resource_fails_loudly():
    with pytest.raises(ValueError, match="no mapping"):
        pulumi_objects([("vault:index/token:Token", {})])


def test_the_database_admin_password_comes_from_its_secret_and_stays_a_pulumi_secret(stack):
    """Each connection's initial admin password: read from the Secrets Manager secret the data names, a Pulumi secret
    in the connection's inputs, in plaintext nowhere; the roles use that connection, with the data's TTLs."""
    run = vault_project(stack)
    connections = run.of_type("vault:database/secretBackendConnection:SecretBackendConnection")
    declared = vault_data.load(DATA_DIR, [stack])["databases"][0]
    assert [unwrap(c.inputs)["name"] for c in connections] == [conn["name"] for conn in declared["connections"]]
    for conn in connections:
        assert unwrap(conn.inputs)["postgresql"]["password"] == runs.DATABASE_ADMIN_PASSWORD
        assert unwrap(conn.inputs)["verifyConnection"] is True
    for res in run.resources:
        for path, text in plaintext_strings(res.inputs):
            assert runs.DATABASE_ADMIN_PASSWORD not in text, "%s %s.%s holds the admin password" % (res.type, res.name, path)
    roles = dict((unwrap(r.inputs)["name"], unwrap(r.inputs))
                 for r in run.of_type("vault:database/secretBackendRole:SecretBackendRole"))
    assert sorted(roles) == sorted(role["name"] for role in declared["roles"])
    for role in declared["roles"]:
        assert roles[role["name"]]["maxTtl"] <= declared["max_ttl"]
