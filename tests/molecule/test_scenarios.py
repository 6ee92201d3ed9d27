"""The Molecule scenarios under extensions/molecule: syntax, role coverage, and how they layer on the inventories.

``make molecule`` runs the default scenario for real; the kind scenario needs Docker, so here it gets what runs
without a cluster: ``ansible-playbook --syntax-check`` of every playbook (``molecule syntax`` does the same) and,
in test_kind_render.py, a dry check of everything it renders.
"""

import os
import re
import subprocess

import pytest
import yaml

from heracles_playbook import ANSIBLE_PLAYBOOK
from heracles_testlib import ROOT, env

SCENARIOS_DIR = os.path.join(ROOT, "extensions", "molecule")
# scenario -> the repository inventory it layers its own inventory/ on (molecule.yml lists both, in this order)
SCENARIOS = {"default": "local", "kind": "dev"}
STEPS = ("create", "converge", "verify", "destroy")
# What a scenario may override of its base inventory: where state lives and how to reach its cluster.
ALLOWED_OVERRIDES = {
    "default": {"heracles_state_dir", "local_cluster_base_port", "heracles_vault_connection",
                "backup_schedule_method", "backup_schedule_cron_file", "backup_schedule_workdir",
                "backup_schedule_command"},
    "kind": {"heracles_state_dir", "heracles_vault_connection", "configure_audit_file_path"},
}


def read_yaml(*parts):
    with open(os.path.join(*parts)) as handle:
        return yaml.safe_load(handle)


def scenario_dir(name):
    return os.path.join(SCENARIOS_DIR, name)


def inventory_args(name):
    return ["-i", os.path.join(ROOT, "inventories", SCENARIOS[name]), "-i", os.path.join(scenario_dir(name), "inventory")]


def tracked_roles():
    """Roles in roles/ (tracked ones when git is there, so work in progress elsewhere does not count yet)."""
    try:
        out = subprocess.run(["git", "ls-files", "roles"], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return sorted({path.split("/")[1] for path in out.stdout.split()})
    return sorted(name for name in os.listdir(os.path.join(ROOT, "roles")) if not name.startswith("."))


def roles_in_playbook(path, seen=None):
    """Roles a playbook runs: ``roles:``, include_role/import_role, and those of the playbooks it imports."""
    seen = set() if seen is None else seen
    path = os.path.normpath(path)
    if path in seen:
        return set()
    seen.add(path)
    found = set()
    for play in read_yaml(path) or []:
        if "ansible.builtin.import_playbook" in play or "import_playbook" in play:
            target = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
            found |= roles_in_playbook(os.path.join(os.path.dirname(path), target), seen)
            continue
        for role in play.get("roles") or []:
            found.add((role["role"] if isinstance(role, dict) else role).split(".")[-1])
        for task in play.get("tasks") or []:
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                if key in task:
                    found.add(task[key]["name"].split(".")[-1])
    return found


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_files(name):
    """Every step has its playbook, and molecule.yml runs against the live tree with no Galaxy and no prerun."""
    for step in STEPS:
        assert os.path.isfile(os.path.join(scenario_dir(name), step + ".yml")), (name, step)
    config = read_yaml(scenario_dir(name), "molecule.yml")
    assert config["driver"]["name"] == "default"
    assert config["prerun"] is False
    assert config["dependency"]["enabled"] is False
    assert config["ansible"]["env"]["ANSIBLE_COLLECTIONS_PATH"] == "${MOLECULE_PROJECT_DIRECTORY}/.collections"
    assert config["ansible"]["executor"]["args"]["ansible_playbook"] == [
        "--inventory=${MOLECULE_PROJECT_DIRECTORY}/inventories/%s" % SCENARIOS[name],
        "--inventory=${MOLECULE_SCENARIO_DIRECTORY}/inventory"]
    assert {"create", "converge", "idempotence", "verify", "destroy"} <= set(config["scenario"]["test_sequence"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_syntax(name, tmp_path):
    """What `molecule syntax -s <name>` checks, for every playbook of the scenario (kind's too, without Docker)."""
    playbooks = sorted(os.path.join(scenario_dir(name), f) for f in os.listdir(scenario_dir(name)) if f.endswith(".yml")
                       and f != "molecule.yml")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "--syntax-check"] + inventory_args(name) + playbooks, cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=300,
                          env=env({"MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path)}))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# Roles whose real boundary no scenario can host (an EKS cluster or a self-managed API server's etcd): each runs
# against that boundary in the named integration test instead (a real etcd from Debian's etcd-server, moto EKS).
EXERCISED_ELSEWHERE = {
    "envelope_encryption": ("tests/integration/test_envelope_encryption.py", "envelope_encryption_"),
    # ESO's objects come from a recorded cluster there (tests/data/eso); the Vault side is the session cluster
    "eso_sync": ("tests/integration/test_eso_sync.py", "eso-sync.yml"),
    # runbooks run against the session cluster (and a recorded Kubernetes API for their consumers)
    "rotate": ("tests/integration/test_rotation_leak.py", "rotate.yml"),
    "leak_response": ("tests/integration/test_rotation_leak.py", "leak-response.yml"),
    # a restore needs a snapshot of the same cluster and replaces its data: the backup tests own a cluster for it
    "restore": ("tests/integration/test_backup_playbooks.py", "restore.yml"),
}


def test_every_role_is_exercised():
    """Each role in roles/ runs in at least one scenario's create, prepare, converge, side_effect or destroy."""
    for role, (test, evidence) in EXERCISED_ELSEWHERE.items():
        with open(os.path.join(ROOT, test)) as handle:
            assert evidence in handle.read(), (role, test)  # the test drives the role or its playbook
    exercised = set(EXERCISED_ELSEWHERE)
    for name in SCENARIOS:
        for step in ("create", "prepare", "converge", "side_effect", "destroy"):
            path = os.path.join(scenario_dir(name), step + ".yml")
            if os.path.exists(path):
                exercised |= roles_in_playbook(path)
    missing = [role for role in tracked_roles() if role not in exercised]
    assert not missing, ("roles not exercised by any Molecule scenario: %s -- import the playbook that runs them in "
                         "extensions/molecule/default/converge.yml, or in a side_effect.yml step for a runbook that needs a "
                         "broken cluster (add side_effect to its test_sequence)" % missing)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_overrides_stay_small(name):
    """A scenario's inventory moves state and the connection only; every other setting is its base inventory's."""
    base = read_yaml(ROOT, "inventories", SCENARIOS[name], "group_vars", "all.yml")
    own = read_yaml(scenario_dir(name), "inventory", "group_vars", "all.yml")
    overridden = {key for key in own if key in base}
    assert overridden <= ALLOWED_OVERRIDES[name] | {key for key in own if key.startswith("backup_schedule_")}, overridden
    # Scenario-only variables carry the scenario's prefix, so they cannot shadow a role variable by accident.
    prefixes = {"default": ("heracles_molecule_",), "kind": ("kind_", "heracles_kind_")}[name]
    for key in set(own) - set(base) - ALLOWED_OVERRIDES[name]:
        assert key.startswith(prefixes), key
    # The connection, where a scenario sets one, has the base inventory's shape (init_file auth, a file store).
    connection = own.get("heracles_vault_connection") or base["heracles_vault_connection"]
    assert set(connection) == {"url", "nodes", "ca_cert", "init_store", "init_file", "init_file_password_file",
                               "auth_method"}
    assert connection["auth_method"] == "init_file"


def test_default_scenario_keeps_the_local_connection_and_moves_only_the_ports():
    """The scenario sets local_cluster_base_port and nothing of the connection: url and nodes follow the knob."""
    base = read_yaml(ROOT, "inventories", "local", "group_vars", "all.yml")
    own = read_yaml(scenario_dir("default"), "inventory", "group_vars", "all.yml")
    assert "heracles_vault_connection" not in own and "local_cluster_base_port" in own
    connection = base["heracles_vault_connection"]
    assert all("local_cluster_base_port" in text for text in (connection["url"], connection["nodes"]))


def test_make_test_runs_the_default_scenario():
    with open(os.path.join(ROOT, "Makefile")) as handle:
        makefile = handle.read()
    test_target = re.search(r"^test:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    assert "molecule" in test_target
    assert re.search(r"^molecule:.*\n\t\$\(BIN\)/molecule test -s default$", makefile, re.M)
    assert re.search(r"^molecule-kind:.*\n\t\$\(BIN\)/molecule test -s kind$", makefile, re.M)
