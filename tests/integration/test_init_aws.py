"""vault_init / vault_unseal with the init material in AWS Secrets Manager under a KMS key (moto server)."""

import boto3
import pytest

from heracles_testlib import ClusterHandle, find_leaks, run_module


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    handle = ClusterHandle(tmp_path_factory.mktemp("aws"), node_count=1).start()
    try:
        yield handle
    finally:
        handle.stop()


def test_init_to_secrets_manager_then_unseal_from_it(single, aws_env):
    kms = boto3.client("kms", endpoint_url=aws_env, region_name="us-east-1")
    key_id = kms.create_key(Description="heracles test vault-init")["KeyMetadata"]["KeyId"]
    args = dict(url=single.url, ca_cert=single.ca_cert, auth_method="none", init_store="aws_secretsmanager",
                aws_secret_name="heracles/test/vault-init", aws_kms_key_id=key_id, aws_region="us-east-1",
                aws_endpoint_url=aws_env)
    init_args = dict(args, secret_shares=3, secret_threshold=2)

    check = run_module("vault_init", init_args, check=True)
    assert not check.failed and check["changed"] is True and check["init_store_exists"] is False

    res = run_module("vault_init", init_args)
    assert not res.failed, res
    assert res["changed"] is True and res["init_store"] == "secretsmanager:heracles/test/vault-init"

    sm = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    meta = sm.describe_secret(SecretId="heracles/test/vault-init")
    assert meta["KmsKeyId"] == key_id
    import json
    material = json.loads(sm.get_secret_value(SecretId="heracles/test/vault-init")["SecretString"])
    needles = material["unseal_keys_b64"] + [material["root_token"]]
    assert not find_leaks(needles, [("stdout", res.stdout), ("stderr", res.stderr)])

    assert run_module("vault_init", init_args)["changed"] is False

    unseal = run_module("vault_unseal", args)
    assert not unseal.failed, unseal
    assert unseal["unsealed"] == [single.url]
    assert not find_leaks(needles, [("stdout", unseal.stdout), ("stderr", unseal.stderr)])

    status = run_module("vault_status_info", dict(args, auth_method="init_file"))
    assert not status.failed and status["voters"] == ["node1"]


def test_existing_secret_is_not_overwritten(single, aws_env):
    sm = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    sm.create_secret(Name="heracles/test/taken", SecretString='{"version": 1, "root_token": "keep"}')
    other = ClusterHandle(single.base_dir + "-other", node_count=1).start()
    try:
        res = run_module("vault_init", dict(url=other.url, ca_cert=other.ca_cert, auth_method="none",
                                            init_store="aws_secretsmanager", aws_secret_name="heracles/test/taken",
                                            aws_region="us-east-1", aws_endpoint_url=aws_env))
        assert res.failed and "already holds init material" in res["msg"]
        assert run_module("vault_status_info", dict(url=other.url, ca_cert=other.ca_cert,
                                                    auth_method="none"))["initialized"] is False
        assert sm.get_secret_value(SecretId="heracles/test/taken")["SecretString"] == '{"version": 1, "root_token": "keep"}'
    finally:
        other.stop()


def test_unreachable_aws_fails_before_init(single, tmp_path_factory):
    other = ClusterHandle(tmp_path_factory.mktemp("aws-down"), node_count=1).start()
    try:
        res = run_module("vault_init", dict(url=other.url, ca_cert=other.ca_cert, auth_method="none",
                                            init_store="aws_secretsmanager", aws_secret_name="x", aws_region="us-east-1",
                                            aws_endpoint_url="http://127.0.0.1:9"),
                         extra_env=dict(AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_MAX_ATTEMPTS="1"))
        assert res.failed and "Secrets Manager" in res["msg"]
        assert run_module("vault_status_info", dict(url=other.url, ca_cert=other.ca_cert,
                                                    auth_method="none"))["initialized"] is False
    finally:
        other.stop()
