"""The filters rotate.yml and leak-response.yml ask the vault/ data with: environments, workloads, consumers, plan.

They run on the repository's own vault/ (what the runbooks read) and on a copy changed in one place, so a test
follows the data rather than constants of its own.
"""

import os
import shutil

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.heracles.secrets.plugins.filter.vault_consumers import vault_consumers
from ansible_collections.heracles.secrets.plugins.filter.vault_environments import vault_environments
from ansible_collections.heracles.secrets.plugins.filter.vault_rotation_plan import vault_rotation_plan
from ansible_collections.heracles.secrets.plugins.filter.vault_workloads import vault_workloads

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
DATA = os.path.join(REPO_ROOT, "vault")


def generate(data, env):
    with open(os.path.join(data, "seed", env + ".yml")) as handle:
        return yaml.safe_load(handle).get("generate") or {}


def test_environments_are_the_files_of_environments(tmp_path):
    assert vault_environments(DATA) == sorted(n[:-4] for n in os.listdir(os.path.join(DATA, "environments")))
    copy = str(tmp_path / "vault")
    shutil.copytree(DATA, copy)
    shutil.copy(os.path.join(copy, "environments", "dev.yml"), os.path.join(copy, "environments", "qa.yml"))
    assert "qa" in vault_environments(copy)
    with pytest.raises(AnsibleFilterError, match="cannot list .*/nowhere/environments"):
        vault_environments(str(tmp_path / "nowhere"))


def test_workloads_give_the_mounts_from_the_data():
    for env in vault_environments(DATA):
        with open(os.path.join(DATA, "environments", env + ".yml")) as handle:
            declared = yaml.safe_load(handle)
        workloads = vault_workloads(DATA, env)
        assert (workloads["kv"], workloads["auth_mount"]) == (declared["kv"]["path"], declared["kubernetes"]["path"])
    with pytest.raises(AnsibleFilterError, match="no declared environment 'qa'"):
        vault_workloads(DATA, "qa")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_rotated_secret_has_consumers_or_none_and_each_consumer_reads_it(env):
    declared = vault_workloads(DATA, env)
    for path in generate(DATA, env):
        found = vault_consumers(declared, [path])
        for ref in found["external_secrets"]:
            namespace, name = ref.split("/")
            app = [a for a in declared["apps"] if a["namespace"] == namespace][0]
            secret = [s for s in app["secrets"] if s["name"] == name][0]
            assert path in [r["remote_key"] for r in secret["data"]] + secret["extract"]
        for item in found["workloads"]:
            assert set(item["secrets"]) <= set(r.split("/")[1] for r in found["external_secrets"] if
                                               r.startswith(item["namespace"] + "/"))


def test_consumers_with_times_give_each_external_secret_its_newest_change():
    declared = vault_workloads(DATA, "dev")
    found = vault_consumers(declared, {"apps/payments/db": "2026-12-07T03:05:00.5Z", "kv-dev/apps/payments/stripe": 100,
                                       "apps/orders/redis": "1796612700"})
    assert found["changed_at"] == {"payments/payments-db": 1796612701, "payments/payments-stripe": 100,
                                   "orders/orders-redis": 1796612700}
    assert found["external_secrets"] == ["payments/payments-db", "payments/payments-stripe", "orders/orders-redis"]
    api = [w for w in found["workloads"] if w["name"] == "payments-api"][0]
    assert api == {"namespace": "payments", "kind": "Deployment", "name": "payments-api",
                   "secrets": ["payments-db", "payments-stripe"]}
    assert "changed_at" not in vault_consumers(declared, ["apps/payments/db"])


@pytest.mark.parametrize("declared, secrets, expect", [
    ({"kv": "x"}, [], "the input must be an environment's apps"),
    (None, [], "the input must be an environment's apps"),
    ({"apps": []}, "apps/payments/db", "give the changed secrets as a list of paths or a mapping"),
    ({"apps": []}, {"apps/payments/db": "yesterday"}, "the time of apps/payments/db, 'yesterday', is not unix"),
], ids=["not-workloads", "none", "string", "bad-time"])
def test_consumers_refuse_bad_input(declared, secrets, expect):
    with pytest.raises(AnsibleFilterError, match=expect):
        vault_consumers(declared, secrets)


def test_rotation_plan_follows_the_cadence_in_common_yml(tmp_path):
    plan = vault_rotation_plan(DATA, "dev", generate(DATA, "dev"))
    windows = dict((g["window"], sorted(g["secrets"])) for g in plan)
    assert windows["90d"] == ["apps/payments/stripe"]
    assert "apps/payments/db" in windows["30d"]
    copy = str(tmp_path / "vault")
    shutil.copytree(DATA, copy)
    common = os.path.join(copy, "common.yml")
    with open(common) as handle:
        text = handle.read()
    with open(common, "w") as handle:
        handle.write(text.replace("database: 30d", "database: 7d"))
    changed = dict((g["window"], g) for g in vault_rotation_plan(copy, "dev", generate(copy, "dev")))
    assert changed["7d"]["kinds"] == ["database"] and "apps/payments/db" in changed["7d"]["secrets"]
    with pytest.raises(AnsibleFilterError, match="generate must map secret paths"):
        vault_rotation_plan(DATA, "dev", ["apps/payments/db"])
