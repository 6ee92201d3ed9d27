"""Apps as data (vault_data.load_workloads): the declared apps, and bad input refused before anything renders."""

import os
import shutil

import pytest
import yaml

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from ansible_collections.heracles.secrets.plugins.module_utils.vault_data import VaultDataError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
DATA = os.path.join(ROOT, "vault")


def test_environments_are_the_files_under_environments():
    assert vault_data.environments(DATA) == sorted(
        name[:-4] for name in os.listdir(os.path.join(DATA, "environments")) if name.endswith(".yml"))


@pytest.mark.parametrize("env", vault_data.environments(DATA))
def test_every_mapped_key_exists_in_the_seed(env):
    with open(os.path.join(DATA, "seed", env + ".yml")) as handle:
        seed = yaml.safe_load(handle)
    fields = {}
    for section in ("secrets", "generate"):
        for path, values in seed[section].items():
            fields.setdefault(path, set()).update(values)
    workloads = vault_data.load_workloads(DATA, env)
    assert workloads["apps"]
    for app in workloads["apps"]:
        assert app["secrets"], app["name"]
        for secret in app["secrets"]:
            for ref in secret["data"]:
                assert ref["remote_key"].startswith("apps/%s/" % app["name"])  # only the app's own paths
                assert ref["property"] in fields[ref["remote_key"]], (secret["name"], ref)


def test_consumers_of_a_rotated_path():
    workloads = vault_data.load_workloads(DATA, "prod")
    found = vault_data.consumers_of(workloads, ["kv-prod/apps/orders/db"])
    assert found["external_secrets"] == ["orders/orders-db"]
    assert [(w["kind"], w["name"], w["secrets"]) for w in found["workloads"]] == [
        ("Deployment", "orders-api", ["orders-db"]), ("StatefulSet", "orders-worker", ["orders-db"])]
    assert vault_data.consumers_of(workloads, ["apps/nobody/x"]) == {"external_secrets": [], "workloads": []}


def test_rotation_plan_groups_generated_fields_by_cadence():
    generate = {"apps/payments/db": {"password": "p"}, "apps/payments/stripe": {"api_key": "p"},
                "apps/other/thing": {"token": "p"}}
    plan = vault_data.rotation_plan(DATA, "dev", generate)
    by_window = {group["window"]: group for group in plan}
    assert by_window["90d"]["secrets"] == {"apps/payments/stripe": {"api_key": "p"}}
    assert by_window["90d"]["kinds"] == ["api-key"]
    assert set(by_window["30d"]["secrets"]) == {"apps/payments/db", "apps/other/thing"}  # default: 30d
    assert by_window["30d"]["kinds"] == ["database", "default"]


@pytest.fixture()
def data(tmp_path):
    dest = tmp_path / "vault"
    shutil.copytree(DATA, str(dest))
    return dest


def edit_env(data, change):
    path = data / "environments" / "dev.yml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))


def payments(doc):
    return [app for app in doc["apps"] if app["name"] == "payments"][0]


def secret(doc, name):
    return [s for app in doc["apps"] for s in app["secrets"] if s["name"] == name][0]


BAD = [
    ("unknown vault secret", lambda d: secret(d, "payments-db")["data"].update(x={"from": "nope", "property": "p"}),
     "app payments: Secret payments-db key x reads apps/payments/nope, which seed declares no field of"),
    ("unknown field", lambda d: secret(d, "payments-db")["data"].update(x={"from": "db", "property": "pasword"}),
     "reads field 'pasword' of apps/payments/db, which is not declared"),
    ("another app's secret", lambda d: secret(d, "payments-db")["data"].update(x={"from": "../orders/db"}),
     "from '../orders/db' must name a secret under apps/payments/ (letters, digits, '_', '-', '.', '/'; no '..')"),
    ("template names a missing key", lambda d: secret(d, "payments-db")["template"].update(X="{{ .hostname }}"),
     "Secret payments-db template X reads hostname, which the Secret does not map"),
    ("template with index", lambda d: secret(d, "payments-db")["template"].update(X='{{ index . "db-pass" }}'),
     "template X reads db-pass"),
    ("two apps, one namespace", lambda d: d["apps"][1].update(namespace="payments"),
     "app orders: namespace payments is already app payments's"),
    ("one Secret name twice", lambda d: payments(d)["secrets"].append(dict(secret(d, "payments-db"))),
     "Secret payments-db is declared twice in namespace payments"),
    ("namespace not a DNS label", lambda d: payments(d).update(namespace="Payments_NS"),
     "app payments: namespace 'Payments_NS' must be a DNS label"),
    ("refreshInterval in days", lambda d: secret(d, "payments-db").update(refresh_interval="1d"),
     "Secret payments-db refresh_interval '1d' does not parse as a Go duration"),
    ("refreshInterval garbage", lambda d: secret(d, "payments-db").update(refresh_interval="hourly"),
     "does not parse as a Go duration"),
    ("creation policy", lambda d: secret(d, "payments-db").update(creation_policy="Sometimes"),
     "creation_policy 'Sometimes' is not one of Owner, Merge, Orphan"),
    ("delete what ESO does not own",
     lambda d: secret(d, "payments-db").update(creation_policy="Merge", deletion_policy="Delete"),
     "deletion_policy Delete needs creation_policy Owner"),
    ("consumer kind", lambda d: secret(d, "payments-db").update(consumers=["CronJob/report"]),
     "consumer kind 'CronJob' is not one of Deployment, StatefulSet, DaemonSet"),
    ("unknown setting", lambda d: secret(d, "payments-db").update(refreshInterval="1h"),
     "Secret payments-db: unknown setting(s) refreshInterval"),
    ("rotation kind", lambda d: payments(d)["rotation"].update(db="weekly"),
     "rotation kind 'weekly' of apps/payments/db is not in common.yml rotation_cadence"),
    ("app in ESO's namespace", lambda d: payments(d).update(namespace="external-secrets"),
     "namespace external-secrets is ESO's"),
    ("network rule", lambda d: payments(d)["network"]["egress"].append({"cidr": "10.0.0.0/8"}),
     "needs ports"),
    ("maps nothing", lambda d: secret(d, "payments-db").update(data={}, template={}),
     "Secret payments-db maps nothing"),
]


@pytest.mark.parametrize("change,why", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_workload_data_names_the_file_and_the_app(data, change, why):
    edit_env(data, change)
    with pytest.raises(VaultDataError) as err:
        vault_data.load_workloads(str(data), "dev")
    assert why in str(err.value)
    assert str(data / "environments" / "dev.yml") in str(err.value)


def test_vault_configuration_is_refused_too_when_an_apps_delivery_data_is_bad(data):
    # configure.yml and pulumi/vault read load(): an app whose Secrets cannot render gets no Vault role either
    edit_env(data, lambda d: secret(d, "payments-db").update(refresh_interval="soon"))
    with pytest.raises(VaultDataError, match="app payments: Secret payments-db refresh_interval 'soon'"):
        vault_data.load(str(data), ["dev"])


def test_deployment_facts_with_what_is_derived():
    facts = vault_data.load_deployment(DATA, "prod")
    assert facts["vault"]["address"] == "https://%s:%d" % (facts["vault"]["hostname"], facts["vault"]["port"])
    assert facts["backup"]["kms_key_id"] == "alias/" + facts["backup"]["kms_alias"]
    assert facts["init_store"]["kms_key_id"] == "alias/" + facts["init_store"]["kms_alias"]


BAD_FACTS = [
    ("missing block", lambda d: d.pop("deployment"), "deployment is required"),
    ("missing key", lambda d: d["deployment"]["backup"].pop("bucket"), "deployment.backup.bucket is required"),
    ("wrong type", lambda d: d["deployment"]["backup"].update(retention_days="90"),
     "deployment.backup.retention_days must be a int"),
    ("unknown key", lambda d: d["deployment"]["vault"].update(adress="x"), "deployment.vault has unknown key(s) adress"),
    ("empty bucket", lambda d: d["deployment"]["backup"].update(bucket=""), "deployment.backup.bucket must not be empty"),
    ("prefix", lambda d: d["deployment"]["backup"].update(prefix="raft"), "prefix 'raft' must end with /"),
    ("lock past expiry", lambda d: d["deployment"]["backup"].update(object_lock_days=400),
     "object_lock_days must be between 0 and retention_days"),
    ("replica in the same region", lambda d: d["deployment"]["backup"].update(replica_region="ap-northeast-1"),
     "replica_region must differ from region"),
]


@pytest.mark.parametrize("change,why", [case[1:] for case in BAD_FACTS], ids=[case[0] for case in BAD_FACTS])
def test_bad_deployment_facts_are_refused(data, change, why):
    edit_env(data, change)
    with pytest.raises(VaultDataError) as err:
        vault_data.load_deployment(str(data), "dev")
    assert why in str(err.value)
