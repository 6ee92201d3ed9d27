"""The docs cover the collection and the front page names only what exists.

The reference is generated from the plugins' and roles' own documentation by antsibull-docs (as on the Ansible
docsite); the runbook guide (docs/docsite/rst/runbooks.rst) must list every playbook; README.md may name only modules,
filters, roles and playbooks that exist.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def names(folder, suffix):
    return sorted(n[:-len(suffix)] for n in os.listdir(os.path.join(ROOT, folder))
                  if n.endswith(suffix) and not n.startswith("_"))


MODULES = names("plugins/modules", ".py")
FILTERS = names("plugins/filter", ".py")
ROLES = sorted(n for n in os.listdir(os.path.join(ROOT, "roles")) if os.path.isdir(os.path.join(ROOT, "roles", n)))
PLAYBOOKS = names("playbooks", ".yml")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """antsibull-docs' rst for the collection as installed in .collections (make collection links it)."""
    dest = tmp_path_factory.mktemp("docs")
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    proc = subprocess.run([os.path.join(BIN, "antsibull-docs"), "collection", "--use-current", "--squash-hierarchy",
                           "--dest-dir", str(dest), "heracles.secrets"], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return set(os.listdir(str(dest)))


def test_every_module_filter_and_role_has_a_reference_page(generated):
    expected = {"%s_module.rst" % m for m in MODULES} | {"%s_filter.rst" % f for f in FILTERS} | {
        "%s_role.rst" % r for r in ROLES}
    assert sorted(expected - generated) == []
    assert len(expected) > 40


def test_the_runbook_guide_lists_every_playbook():
    with open(os.path.join(ROOT, "docs", "docsite", "rst", "runbooks.rst")) as handle:
        listed = set(re.findall(r"``([a-z0-9-]+)\.yml``", handle.read()))
    assert sorted(set(PLAYBOOKS) - listed) == [] and sorted(listed - set(PLAYBOOKS)) == []
    with open(os.path.join(ROOT, "docs", "docsite", "extra-docs.yml")) as handle:
        assert "runbooks" in handle.read()


def test_readme_names_only_what_exists():
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    fqcns = set(re.findall(r"heracles\.secrets\.([a-z0-9_]+)", readme)) - {"vault"}  # group/heracles.secrets.vault
    assert sorted(fqcns - set(MODULES) - set(FILTERS) - set(ROLES)) == []
    playbooks = set(re.findall(r"(?:playbooks/)?\b([a-z0-9-]+)\.yml\b", readme))
    known = set(PLAYBOOKS) | {"site", "common", "hosts", "all", "argument_specs", "main", "molecule", "converge",
                              "verify", "create", "destroy", "extra-docs", "links", "vars", "inventory", "Pulumi",
                              "galaxy", "runtime", "dev", "staging", "prod", "config", "changelog"}
    referenced = {p for p in playbooks if "playbooks/%s.yml" % p in readme or "`%s.yml`" % p in readme}
    assert sorted(referenced - known) == []
    roles = set(re.findall(r"roles/([a-z0-9_]+)", readme))
    assert sorted(roles - set(ROLES)) == []
    for path in re.findall(r"\]\(((?:docs|tests|pulumi|vault)/[^)#]+)\)", readme):
        assert os.path.exists(os.path.join(ROOT, path)), path
