"""Adding an environment is adding data files: a `qa` environment in a copy of vault/ reaches a real cluster.

Nothing enumerates environments outside vault/environments/: configure.yml and seed.yml, run with only the copy's
data directory, create qa's mounts, policies, Kubernetes auth roles and secrets, and qa's apps log in.
"""

import os
import re
import shutil

import hvac
import yaml

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT


def add_qa(data_dir):
    """environments/qa.yml and seed/qa.yml, made from dev's the way a user would copy them."""
    with open(os.path.join(data_dir, "environments", "dev.yml")) as handle:
        text = handle.read()
    # every name that carries the environment (kv-dev, kubernetes-dev, heracles/dev/..., vault.dev....) -> qa
    env = yaml.safe_load(re.sub(r"(?<=[-/.])dev\b", "qa", text))
    env["environment"] = "qa"
    with open(os.path.join(data_dir, "environments", "qa.yml"), "w") as handle:
        yaml.safe_dump(env, handle)
    shutil.copy(os.path.join(data_dir, "seed", "dev.yml"), os.path.join(data_dir, "seed", "qa.yml"))


def test_a_qa_environment_is_data_files_only(configured_cluster, tmp_path):
    data = tmp_path / "vault"
    shutil.copytree(os.path.join(ROOT, "vault"), str(data))
    add_qa(str(data))
    before = set(os.listdir(os.path.join(ROOT, "vault", "environments")))
    assert set(os.listdir(str(data / "environments"))) - before == {"qa.yml"}
    assert "qa" in vault_data.environments(str(data))

    # no environment list given anywhere: the roles enumerate vault/environments of the data directory
    kubernetes = configured_cluster["kubernetes"]
    (tmp_path / "state").mkdir()
    runner = Runner(tmp_path / "state", dict(
        heracles_vault_connection=connection_vars(configured_cluster["cluster"]), configure_data_dir=str(data),
        seed_data_dir=str(data), configure_kubernetes=dict((env, kubernetes) for env in vault_data.environments(str(data)))))
    for playbook in ("configure.yml", "seed.yml"):
        proc = runner.run(playbook)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert recap(proc)["changed"] >= 1, playbook  # qa is new

    root = configured_cluster["cluster"].hvac()
    assert "kv-qa/" in root.sys.list_mounted_secrets_engines()["data"]
    assert "kubernetes-qa/" in root.sys.list_auth_methods()["data"]
    assert root.secrets.kv.v2.read_secret_version("apps/payments/db", mount_point="kv-qa",
                                                  raise_on_deleted_version=True)["data"]["data"]["username"]
    jwt = configured_cluster["tokenreview"].mint("payments", "payments", audiences=["vault"])
    app = hvac.Client(url=configured_cluster["cluster"].leader(), verify=configured_cluster["cluster"].ca_cert)
    app.auth.kubernetes.login("payments", jwt, mount_point="kubernetes-qa")
    assert app.secrets.kv.v2.read_secret_version("apps/payments/db", mount_point="kv-qa",
                                                 raise_on_deleted_version=True)["data"]["data"]["password"]
    # clean up what only this test declared, so modules sharing the cluster see the repository's environments
    for mount in root.sys.list_mounted_secrets_engines()["data"]:
        if re.search(r"-qa/$", mount):
            root.sys.disable_secrets_engine(mount)
    root.sys.disable_auth_method("kubernetes-qa")
    for policy in root.sys.list_acl_policies()["data"]["keys"]:
        if policy.startswith("qa-"):
            root.sys.delete_acl_policy(policy)
