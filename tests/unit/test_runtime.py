"""meta/runtime.yml and the connection doc fragment agree with the code.

* The ``vault`` action group lists exactly the modules built on ``VaultModule``
  (which merges CONNECTION_SPEC), so ``module_defaults: group/heracles.secrets.vault``
  reaches every module that takes those options and no other (kubernetes.core keeps
  the same invariant).
* Every option of CONNECTION_SPEC (KEYSTORE_SPEC included) is documented in
  plugins/doc_fragments/connection.py with the same type, default, choices and aliases,
  and the fragment documents nothing the spec lacks.
"""

import ast
import os

import pytest
import yaml

from ansible_collections.heracles.secrets.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.heracles.secrets.plugins.module_utils.client import CONNECTION_SPEC
from ansible_collections.heracles.secrets.plugins.module_utils.keystore import KEYSTORE_SPEC

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES_DIR = os.path.join(REPO_ROOT, "plugins", "modules")
RUNTIME = os.path.join(REPO_ROOT, "meta", "runtime.yml")


def constructs_vault_module(path):
    """True when the module's code calls ``VaultModule(...)`` (comments and docs do not count)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "VaultModule":
                return True
    return False


def vault_modules():
    return sorted(name[:-3] for name in os.listdir(MODULES_DIR)
                  if name.endswith(".py") and not name.startswith("_")
                  and constructs_vault_module(os.path.join(MODULES_DIR, name)))


def test_constructs_vault_module_detects_calls_only(tmp_path):
    code = tmp_path / "m.py"
    code.write_text('"""Uses VaultModule(...) in prose."""\n# VaultModule(\nfrom x import VaultModule\n')
    assert constructs_vault_module(str(code)) is False
    code.write_text("from x import module\nm = module.VaultModule(argument_spec={})\n")
    assert constructs_vault_module(str(code)) is True


def test_vault_action_group_equals_modules_using_vault_module():
    with open(RUNTIME) as handle:
        runtime = yaml.safe_load(handle)
    group = runtime["action_groups"]["vault"]
    assert len(group) == len(set(group)), "duplicate entries in the vault action group"
    modules = vault_modules()
    assert modules, "no module constructs VaultModule: the scan is broken"
    assert sorted(group) == modules


def _documented():
    options = {}
    for fragment in (ModuleDocFragment.DOCUMENTATION, ModuleDocFragment.KEYSTORE):
        for name, doc in yaml.safe_load(fragment)["options"].items():
            assert name not in options, "%s documented twice" % name
            options[name] = doc
    return options


DOCUMENTED = _documented()


def test_keystore_spec_is_part_of_connection_spec():
    for name, spec in KEYSTORE_SPEC.items():
        assert CONNECTION_SPEC[name] == spec


def test_fragment_documents_nothing_extra():
    assert sorted(set(DOCUMENTED) - set(CONNECTION_SPEC)) == []


@pytest.mark.parametrize("name", sorted(CONNECTION_SPEC))
def test_option_is_documented_alike(name):
    spec = CONNECTION_SPEC[name]
    assert name in DOCUMENTED, "%s is in CONNECTION_SPEC but not in doc_fragments/connection.py" % name
    doc = DOCUMENTED[name]
    assert doc.get("type", "str") == spec.get("type", "str")
    assert doc.get("elements") == spec.get("elements")
    assert doc.get("default") == spec.get("default")
    assert doc.get("choices") == spec.get("choices")
    assert sorted(doc.get("aliases", [])) == sorted(spec.get("aliases", []))
    assert doc.get("description"), "%s has no description" % name
