"""backup.yml with S3 (moto server, SSE-KMS) and retention, restore.yml, and the schedule role."""

import glob
import json
import os
import re
import secrets as pysecrets
import stat
import time

import boto3
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_signing as signing
from heracles_playbook import Runner, connection_vars, recap
from heracles_testlib import ROOT, ClusterHandle, keystore, run_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bucket(moto_endpoint):
    env = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    os.environ.update(env)  # module-scoped: boto3 here and in the playbook subprocesses
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")
    key = kms.create_key(Description="heracles test backups")["KeyMetadata"]
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = "heracles-test-backups-%s" % pysecrets.token_hex(4)
    s3.create_bucket(Bucket=name)
    return dict(name=name, key_id=key["KeyId"], key_arn=key["Arn"], s3=s3, endpoint=moto_endpoint)


@pytest.fixture(scope="module")
def world(cluster, bucket, tmp_path_factory):
    state = tmp_path_factory.mktemp("backup")
    backups = state / "backups"
    variables = dict(
        heracles_vault_connection=connection_vars(cluster),
        heracles_env="test",
        backup_dir=str(backups),
        backup_keep_last=1,
        backup_remote_keep_last=1,
        backup_min_interval="0s",  # the local inventory says 1h
        backup_s3=dict(bucket=bucket["name"], prefix="test/raft", kms_key_id=bucket["key_id"], region="us-east-1",
                       endpoint_url=bucket["endpoint"]),
    )
    return dict(runner=Runner(state, variables), variables=variables, backups=str(backups), state=str(state),
                cluster=cluster, bucket=bucket)


def objects(bucket):
    return [o["Key"] for o in bucket["s3"].list_objects_v2(Bucket=bucket["name"], Prefix="test/raft/").get("Contents", [])]


def snaps(world):
    return sorted(f for f in os.listdir(world["backups"]) if f.endswith(".snap"))


def test_backup_check_mode_writes_nothing(world):
    proc = world["runner"].run("backup.yml", "--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not os.path.exists(world["backups"]) or snaps(world) == []
    assert objects(world["bucket"]) == []


def test_backup_twice_with_retention_one_keeps_exactly_one(world):
    results = []
    for dummy in range(2):
        proc = world["runner"].run("backup.yml")
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert recap(proc)["failed"] == 0
        results.append(json.load(open(os.path.join(world["backups"], "last-backup.json"))))
        time.sleep(1.1)  # distinct timestamps in the file names
    assert results[0]["path"] != results[1]["path"]
    assert snaps(world) == [os.path.basename(results[1]["path"])]
    keys = objects(world["bucket"])
    assert keys == ["test/raft/" + os.path.basename(results[1]["path"])]
    for name in os.listdir(world["backups"]):
        assert stat.S_IMODE(os.stat(os.path.join(world["backups"], name)).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(world["backups"]).st_mode) == 0o700
    head = world["bucket"]["s3"].head_object(Bucket=world["bucket"]["name"], Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert world["bucket"]["key_id"] in head["SSEKMSKeyId"]
    assert head["Metadata"]["sha256"] == results[1]["sha256"]
    record = results[1]
    assert record["status"] == "ok" and record["s3"] == "s3://%s/%s" % (world["bucket"]["name"], keys[0])
    assert record["size"] > 0 and record["raft_index"] > 0 and record["time"].endswith("Z")
    # Signed: the signature beside the file and in the object's metadata, made with the init material's key.
    local = results[1]["path"] + ".sig"
    assert json.loads(signing.decode_metadata(head["Metadata"]["heracles-signature"])) == json.load(open(local))
    key_ids = [k["id"] for k in keystore.signing_keys(world["cluster"].init_material())]
    assert record["signature"] == "valid" and record["signing_key"] == key_ids[-1]
    assert sorted(os.listdir(world["backups"])) == sorted([os.path.basename(results[1]["path"]) + suffix
                                                           for suffix in ("", ".sha256", ".sig")] + ["last-backup.json"])


def test_skipped_backup_says_why_and_when_the_next_is_due(world, tmp_path):
    """Finding 2: under backup_min_interval the run skips, says so and when the next one is due; the result file
    keeps the last real backup; backup_force takes one anyway."""
    record = os.path.join(world["backups"], "last-backup.json")
    before, files, keys = open(record, "rb").read(), snaps(world), objects(world["bucket"])
    last = json.loads(before)
    runner = Runner(tmp_path, dict(world["variables"], backup_min_interval="1h"))
    proc = runner.run("backup.yml")
    assert proc.returncode == 0 and recap(proc)["changed"] == 0, proc.stdout[-3000:]
    out = proc.stdout
    assert "backup:    SKIPPED - the last successful backup is younger than backup_min_interval (1h)" in out, out[-3000:]
    assert "last:      %s %s (%s)" % (last["time"], last["path"], last["s3"]) in out
    due = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(float(last["epoch"]) + 3600))
    assert "next due:  " + due in out and "min)" in out
    assert "-e backup_force=true" in out
    assert open(record, "rb").read() == before and snaps(world) == files and objects(world["bucket"]) == keys
    forced = runner.run("backup.yml", "-e", "backup_force=true")
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert "SKIPPED" not in forced.stdout and json.load(open(record))["path"] != last["path"]


def test_failed_backup_is_recorded(world, tmp_path):
    runner = Runner(tmp_path, dict(heracles_vault_connection=dict(connection_vars(world["cluster"]),
                                                                  url="https://127.0.0.1:9", nodes=[], retries=0),
                                   backup_dir=str(tmp_path / "b"), backup_min_interval="0s"))
    proc = runner.run("backup.yml")
    assert proc.returncode != 0
    record = json.load(open(str(tmp_path / "b" / "last-backup.json")))
    assert record["status"] == "failed" and "No Vault node is reachable" in record["error"]
    assert [f for f in os.listdir(str(tmp_path / "b")) if f.endswith((".snap", ".partial"))] == []


def test_snapshot_s3_listing_and_fetch(world, tmp_path):
    s3 = dict(bucket=world["bucket"]["name"], prefix="test/raft", region="us-east-1",
              endpoint_url=world["bucket"]["endpoint"])
    listed = run_module("vault_snapshot_s3", dict(s3, state="listed"))
    assert not listed.failed and len(listed["objects"]) == 1
    dest = str(tmp_path / "fetched.snap")
    fetched = run_module("vault_snapshot_s3", dict(s3, state="fetched", latest=True, path=dest))
    assert not fetched.failed, fetched
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert fetched["sha256"] == world["bucket"]["s3"].head_object(Bucket=s3["bucket"], Key=fetched["key"])["Metadata"]["sha256"]
    shipped = json.load(open(os.path.join(world["backups"], "last-backup.json")))["path"]
    again = run_module("vault_snapshot_s3", dict(s3, path=shipped))  # the same file and bytes again: no change
    assert not again.failed and again["changed"] is False


def test_restore_playbook_from_s3_into_a_new_cluster(world, tmp_path_factory):
    root = world["cluster"].hvac()
    root.sys.enable_secrets_engine("kv", path="kv-restore", options={"version": "2"})
    marker = pysecrets.token_hex(8)
    for dummy in range(30):
        try:
            root.secrets.kv.v2.create_or_update_secret("marker", secret={"v": marker}, mount_point="kv-restore")
            break
        except Exception:  # noqa: BLE001 - kv-v2 upgrade window
            time.sleep(0.3)
    time.sleep(1.1)
    assert world["runner"].run("backup.yml").returncode == 0
    new = ClusterHandle(tmp_path_factory.mktemp("restored")).start().bootstrap()
    try:
        runner = Runner(tmp_path_factory.mktemp("restore-run"), dict(
            heracles_vault_connection=connection_vars(new),
            backup_dir=str(tmp_path_factory.mktemp("restore-dir")),
            backup_s3=dict(bucket=world["bucket"]["name"], prefix="test/raft", region="us-east-1",
                           endpoint_url=world["bucket"]["endpoint"]),
            restore_force=True,
            restore_source_init_file=world["cluster"].init_file,
            restore_source_init_password_file=world["cluster"].password_file,
        ))
        check = runner.run("restore.yml", "--check")
        assert check.returncode == 0, check.stdout[-3000:]
        assert "kv-restore/" not in new.hvac().sys.list_mounted_secrets_engines()["data"]
        # Finding 4: check mode says what it would do, never that it restored.
        assert "restored:  would restore " in check.stdout and "check mode, nothing was sent" in check.stdout
        assert "restored:  True" not in check.stdout and "restored:  yes" not in check.stdout
        assert "init:      would write the source cluster's init material into " + new.init_file in check.stdout
        proc = runner.run("restore.yml")
        assert proc.returncode == 0, proc.stdout[-4000:]
        out = proc.stdout
        assert "sealed nodes: 0" in out
        assert "signature: valid (key hmac-" in out and "verified with restore_init_file" in out
        assert re.search(r"read back: (\d+) of \1 KV secrets \(all\), all readable", out), out[-3000:]
        assert "init:      %s now holds the restored data's keys and root token" % new.init_file in out
        assert readme_labels() <= set(re.findall(r'"(\w[\w ]*?):\s', out)), readme_labels()
        client = new.hvac(token=False)
        client.token = world["cluster"].root_token
        body = client.secrets.kv.v2.read_secret_version("marker", mount_point="kv-restore", raise_on_deleted_version=True)
        assert body["data"]["data"] == {"v": marker}

        # Finding 3: the runbooks work with the connection's init material after the forced restore ...
        recovery = Runner(tmp_path_factory.mktemp("recovery-run"), dict(
            heracles_vault_connection=connection_vars(new), unseal_recovery_wait_timeout=30))
        healthy = recovery.run("unseal-recovery.yml")
        assert healthy.returncode == 0 and "result:     HEALTHY" in healthy.stdout, healthy.stdout[-4000:]
        # ... and the material it replaced, used again, is called what it is: not "permission denied" alone.
        stale = glob.glob(new.init_file + ".*.replaced.bak")
        assert len(stale) == 1 and stat.S_IMODE(os.stat(stale[0]).st_mode) == 0o600
        old = dict(connection_vars(new), init_file=stale[0])
        mismatch = Runner(tmp_path_factory.mktemp("stale-run"), dict(
            heracles_vault_connection=old, unseal_recovery_wait_timeout=30, backup_dir=str(tmp_path_factory.mktemp("b"))))
        for playbook, words in (("unseal-recovery.yml", "INIT MATERIAL MISMATCH"),
                                ("backup.yml", "does not match this cluster's data")):
            failed = mismatch.run(playbook, "--check")
            assert failed.returncode != 0 and words in failed.stdout, failed.stdout[-4000:]
            assert "forced restore" in failed.stdout
    finally:
        new.stop()


def readme_labels():
    """The report labels docs/backups.md's "Disaster recovery, step by step" shows for restore.yml (README names them)."""
    text = open(os.path.join(ROOT, "docs", "backups.md")).read()
    section = text[text.index("## Disaster recovery, step by step"):]
    block = section[section.index("restore.yml prints"):]
    block = block[block.index("```"):]
    block = block[3:block.index("```", 3)]
    labels = set(re.findall(r"^(\w[\w ]*?):\s", block, re.M))
    assert len(labels) >= 6, block
    return labels


def test_schedule_cron_and_systemd_units_idempotent(world, tmp_path):
    cron_file = str(tmp_path / "cron.d" / "heracles-vault-backup")
    os.makedirs(os.path.dirname(cron_file))
    units = tmp_path / "units"
    units.mkdir()
    for method, extra in (("cron", dict(backup_schedule_cron_file=cron_file, backup_schedule_cron="17 3 * * *")),
                          ("systemd", dict(backup_schedule_systemd_dir=str(units), backup_schedule_manage_service=False))):
        runner = Runner(tmp_path, dict(backup_schedule_method=method, backup_schedule_user="root", **extra))
        first = runner.run("backup-schedule.yml")
        assert first.returncode == 0 and recap(first)["changed"] >= 1, first.stdout[-3000:]
        again = runner.run("backup-schedule.yml")
        assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]
    cron = open(cron_file).read()
    assert "17 3 * * * root cd " in cron and "playbooks/backup.yml" in cron
    timer = (units / "heracles-vault-backup.timer").read_text()
    service = (units / "heracles-vault-backup.service").read_text()
    assert "OnCalendar=*-*-* 02:00:00" in timer and "Persistent=true" in timer
    assert "Type=oneshot" in service and "playbooks/backup.yml" in service


def test_signing_with_a_kms_hmac_key(world, tmp_path):
    """signing_kms_key_id: GenerateMac signs, VerifyMac checks; only the configured key verifies."""
    kms = boto3.client("kms", endpoint_url=world["bucket"]["endpoint"], region_name="us-east-1")
    key, other = [kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"] for dummy in range(2)]
    via = dict(signing_kms_region="us-east-1", signing_kms_endpoint_url=world["bucket"]["endpoint"])
    path = str(tmp_path / "kms.snap")
    saved = run_module("vault_raft_snapshot", world["cluster"].conn(path=path, signing_kms_key_id=key["KeyId"], **via))
    assert not saved.failed, saved
    assert saved["signature"]["alg"] == "kms-hmac-sha256" and saved["signature"]["key_id"] == key["Arn"]
    assert saved["signature"]["status"] == "valid" and "signing_key" not in saved  # nothing added to the init material
    good = run_module("vault_raft_snapshot", world["cluster"].conn(path=path, state="verified",
                                                                   signing_kms_key_id=key["Arn"], **via))
    assert not good.failed and good["signature"]["verified_with"] == "KMS key " + key["Arn"], good
    for args, words in ((dict(signing_kms_key_id=other["KeyId"], **via), "is signed with key " + key["Arn"]),
                        ({}, "is signed with key " + key["Arn"]),
                        (dict(signing_kms_key_id=world["bucket"]["key_id"], **via), "is not an HMAC key")):
        res = run_module("vault_raft_snapshot", world["cluster"].conn(path=path, state="verified", **args))
        assert res.failed and words in res["msg"], (args, res["msg"])
