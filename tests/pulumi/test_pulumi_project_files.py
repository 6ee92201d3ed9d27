"""Project files and conventions: typed schemas, stack files, the halves agreeing, pins, README, layout rules."""

import ast
import dataclasses
import importlib.metadata
import os
import re
import tokenize
import typing

import pytest

import harness
import runs
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from harness import StackConfigError, inventory, project_schema, stack_config
from heracles_pulumi.settings import PlatformSettings, VaultConfigSettings, config_key

PROJECTS = {"platform": PlatformSettings, "vault": VaultConfigSettings}
PACKAGE_DIR = os.path.join(harness.PULUMI_DIR, "heracles_pulumi")
SCHEMA_TYPES = {str: "string", int: "integer", bool: "boolean"}


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_settings_read_exactly_the_declared_schema(project):
    name, schema = project_schema(project)
    fields = {"%s:%s" % (name, config_key(field.name)): field for field in dataclasses.fields(PROJECTS[project])}
    assert sorted(fields) == sorted(schema)
    for key, field in fields.items():
        declared = schema[key]
        if typing.get_origin(field.type) is typing.Union:
            assert declared.get("secret") is True and "default" not in declared, key
        elif typing.get_origin(field.type) is list:
            assert declared["type"] == "array" and declared["items"] == {"type": "string"}, key
        else:
            assert declared["type"] == SCHEMA_TYPES[field.type], key


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_stack_files_are_valid_and_name_their_environment(project, stack):
    name, config, secret_keys = stack_config(project, stack)
    assert config["%s:environment" % name] == stack
    assert secret_keys == []  # nothing secret is committed; `pulumi config set --secret` adds secure: values


@pytest.mark.parametrize("overrides, message", [
    ({"bogusKey": "x"}, "does not declare"),
    ({"esoReplicas": "three"}, "declared type integer"),
    ({"subnetIds": [1, 2]}, "declared type array"),
])
def test_the_stack_checks_reject_bad_config(overrides, message):
    with pytest.raises(StackConfigError, match=message):
        stack_config("platform", "dev", overrides=overrides)


@pytest.mark.parametrize("declaration", ["type: string", "type: string\n    secret: true"])
def test_a_required_key_without_value_is_refused_secret_or_not(tmp_path, monkeypatch, declaration):
    """Pulumi's own rule (pkg/workspace/config.go): a key without a default needs a stack value, secret or not."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\nconfig:\n  needed:\n    %s\n" % declaration)
    (project / "Pulumi.s.yaml").write_text("config: {}\n")
    monkeypatch.setattr(harness, "PULUMI_DIR", str(tmp_path))
    with pytest.raises(StackConfigError, match="Stack 's' is missing configuration value 'needed'"):
        stack_config("proj", "s")


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_preflight_every_stack_passes_pulumis_config_rule(project, stack):
    """What `pulumi preview` checks before the program starts: every key without a default has a stack value."""
    name, schema = project_schema(project)
    config = stack_config(project, stack)[1]
    missing = [key for key, decl in schema.items() if "default" not in decl and key not in config]
    assert missing == []
    secrets = [key for key, decl in schema.items() if decl.get("secret")]
    assert secrets == [], "%s declares secret config %s: each needs `pulumi config set --secret`" % (name, secrets)


def _platform(stack):
    return stack_config("platform", stack)[1]


def _value(config, key):
    return harness.json.loads(config[key]) if config[key][:1] in "[{0123456789tf" else config[key]


def test_prod_is_stricter_than_staging_and_dev():
    dev, staging, prod = (_platform(stack) for stack in ("dev", "staging", "prod"))
    p = "heracles-platform:"
    assert [_value(c, p + "deletionProtection") for c in (dev, staging, prod)] == [False, False, True]
    retention = [vault_data.load_deployment(DATA_DIR, env)["backup"]["retention_days"] for env in ("dev", "staging", "prod")]
    assert retention == sorted(retention) and retention[0] < retention[2]
    rotation = [_value(c, p + "kmsRotationPeriodDays") for c in (dev, staging, prod)]
    assert rotation == sorted(rotation, reverse=True) and rotation[2] == 90
    # ESO refresh intervals are data now (vault/environments/<env>.yml workloads.refresh_interval)
    refresh = [vault_data.load_workloads(DATA_DIR, env)["apps"] for env in ("dev", "staging", "prod")]
    fastest = [max(s["refresh_seconds"] for app in apps for s in app["secrets"]) for apps in refresh]
    assert fastest[2] <= fastest[1] <= fastest[0] <= 3600
    assert _value(prod, p + "kmsDeletionWindowDays") == 30 and _value(prod, p + "publicAccessCidrs") == []
    assert _value(prod, p + "esoReplicas") >= _value(dev, p + "esoReplicas") >= 2


DATA_DIR = os.path.join(harness.REPO_ROOT, "vault")


def test_stacks_and_inventory_agree_on_every_deployment_fact(stack):
    """One source: what the stacks create and what the inventory's playbooks use come from the same facts."""
    facts = vault_data.load_deployment(DATA_DIR, stack)
    group_vars = inventory(stack)
    platform = runs.platform(stack)
    connection = group_vars["heracles_vault_connection"]
    assert connection["url"] == facts["vault"]["address"] == platform.outputs["vaultEndpoint"]
    assert group_vars["configure_kubernetes"][stack]["kubernetes_host"] == platform.outputs["kubernetesHost"]
    assert group_vars["configure_audit_file_path"] == facts["vault"]["audit_file_path"]
    assert (connection["aws_secret_name"], connection["aws_kms_key_id"], connection["aws_region"]) == (
        platform.outputs["initSecretName"], platform.outputs["initKeyAlias"], facts["region"])
    backup = group_vars["backup_s3"]
    assert backup == {"bucket": platform.outputs["backupBucket"], "prefix": facts["backup"]["prefix"],
                      "kms_key_id": platform.outputs["backupKeyAlias"]}
    assert group_vars["backup_remote_max_age"] == "%dd" % facts["backup"]["retention_days"]
    assert facts["cluster_name"] == platform.config["heracles-platform:clusterName"]
    assert facts["region"] == platform.config["aws:region"]
    assert group_vars["configure_environments"] == group_vars["seed_environments"] == [stack]


def _string_literals(path):
    with open(path, "rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            if token.type == tokenize.STRING:
                yield token.start[0], token.string


def test_components_hard_code_nothing_environment_specific():
    pattern = re.compile(r"\b(dev|staging|prod|production|ap-northeast-1|us-east-1|eu-west-1)\b|\b\d{12}\b")
    allowed = {("server_config.py", '"dev"'),  # the chart's dev-mode switch: server.dev.enabled = false
               ("cluster.py", '"/dev/xvda"')}  # the root device of the Amazon Linux 2023 nodes
    found = []
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py"):
            for line, text in _string_literals(os.path.join(PACKAGE_DIR, name)):
                if not text.startswith(('"""', "'''")) and pattern.search(text) and (name, text) not in allowed:
                    found.append("%s:%d %s" % (name, line, text))
    assert found == []


def _module_tree(path):
    with open(path) as handle:
        return ast.parse(handle.read(), path)


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_main_only_reads_config_builds_components_and_exports(project):
    tree = _module_tree(os.path.join(harness.project_dir(project), "__main__.py"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"pulumi_aws", "pulumi_kubernetes", "pulumi_vault"}, "resources belong in components"
    assert not [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    exports = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == "export"]
    assert exports


def _components():
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if not name.endswith(".py"):
            continue
        for node in _module_tree(os.path.join(PACKAGE_DIR, name)).body:
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Attribute) and base.attr == "ComponentResource" for base in node.bases):
                yield name[:-3], node


def test_components_follow_the_house_conventions():
    components = list(_components())
    assert len(components) >= 8
    for module, node in components:
        init = [item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"][0]
        args = [arg.arg for arg in init.args.args]
        assert args[:3] == ["self", "name", "args"], (module, node.name, args)
        assert init.args.args[2].annotation.id.endswith("Args"), (module, node.name)
        super_call = init.body[0].value
        token = super_call.args[0].value
        assert re.match(r"^heracles:[a-z]+:[A-Z][A-Za-z]+$", token), token
        last = init.body[-1].value
        assert isinstance(last, ast.Call) and last.func.attr == "register_outputs", (module, node.name)


def test_pulumi_pins_are_the_same_everywhere_and_installed():
    def pins(path):
        with open(os.path.join(harness.REPO_ROOT, path)) as handle:
            return dict(line.strip().split("==") for line in handle if "==" in line and not line.startswith("#"))
    pulumi_pins = pins("requirements-pulumi.txt")
    assert set(pulumi_pins) >= {"pulumi", "pulumi-aws", "pulumi-kubernetes", "pulumi-vault"}
    dev = pins("requirements-dev.txt")
    assert {name: dev.get(name) for name in pulumi_pins} == pulumi_pins
    assert {name: importlib.metadata.version(name) for name in pulumi_pins} == pulumi_pins


def test_provider_packages_import_without_plugins():
    # set_mocks replaces the engine: the provider packages must import and construct resources with no plugin
    # binary on this machine (pulumi-resource-aws & co. are never downloaded here).
    import pulumi_aws  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import pulumi_kubernetes  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import pulumi_vault  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    path_dirs = os.environ.get("PATH", "").split(os.pathsep)
    assert not any(os.path.exists(os.path.join(d, "pulumi-resource-aws")) for d in path_dirs)


def test_the_production_order_is_written_step_by_step():
    """docs/pulumi.md (linked from README's production order) gives the commands in the order they must run."""
    with open(os.path.join(harness.REPO_ROOT, "README.md")) as handle:
        assert "(docs/pulumi.md)" in handle.read()
    with open(os.path.join(harness.REPO_ROOT, "docs", "pulumi.md")) as handle:
        text = handle.read()
    order = [text.index(marker) for marker in (
        "pulumi stack select prod", "pulumi preview --policy-pack", "pulumi up", "playbooks/bootstrap.yml",
        "cd pulumi/vault", "vaultTokenFrom init-store", "playbooks/seed.yml")]
    assert order == sorted(order)
    assert "requirements-pulumi.txt" in text


def test_settings_module_has_no_defaults_of_its_own():
    """Defaults live in Pulumi.yaml only (one place); secret fields default to absent."""
    for cls in PROJECTS.values():
        for field in dataclasses.fields(cls):
            if field.default is not dataclasses.MISSING:
                assert field.default is None and field.metadata.get("secret"), field.name
