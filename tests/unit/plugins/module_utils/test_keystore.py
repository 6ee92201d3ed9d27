"""keystore.py: init material is only ever stored encrypted, and never silently overwritten.

AwsSecretsManagerStore runs against a real moto server on 127.0.0.1 (the
project's stand-in for AWS): boto3 talks HTTP to it exactly as it would to AWS.
"""

import json
import os
import socket
import stat
import uuid

import boto3
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault, keystore
from ansible_collections.heracles.secrets.plugins.module_utils.errors import KeystoreError
from ansible_collections.heracles.secrets.plugins.module_utils.keystore import (
    AwsSecretsManagerStore, FileStore, open_store, read_password, unseal_keys,
)

PASSWORD = "pw-for-tests"
PAYLOAD = {
    "version": keystore.PAYLOAD_VERSION,
    "root_token": "s.RootTokenValue1234",
    "unseal_keys_b64": ["VW5zZWFsS2V5T25l", "VW5zZWFsS2V5VHdv", "VW5zZWFsS2V5VGhyZWU="],
}
SECRET_VALUES = [PAYLOAD["root_token"]] + PAYLOAD["unseal_keys_b64"]


def free_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# -- FileStore -----------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    return FileStore(str(tmp_path / "init.vault"), PASSWORD)


def test_file_roundtrip(store):
    assert not store.exists()
    store.write(PAYLOAD)
    assert store.exists()
    assert store.read() == PAYLOAD


def test_file_is_0600_and_encrypted(store):
    store.write(PAYLOAD)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.permission_warnings() == []
    with open(store.path, "rb") as handle:
        data = handle.read()
    assert data.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    for value in SECRET_VALUES:
        assert value.encode() not in data
    assert json.loads(ansible_vault.decrypt(data, PASSWORD)) == PAYLOAD


def test_file_write_leaves_no_temporary_files(store, tmp_path):
    store.write(PAYLOAD)
    store.write(dict(PAYLOAD, root_token="s.other"), overwrite=True)
    assert sorted(os.listdir(str(tmp_path))) == ["init.vault"]


def test_file_refuses_to_overwrite(store):
    store.write(PAYLOAD)
    with open(store.path, "rb") as handle:
        before = handle.read()
    with pytest.raises(KeystoreError) as info:
        store.write(dict(PAYLOAD, root_token="s.AnotherCluster"))
    assert "already holds init material" in info.value.message
    assert "overwrite_init_file" in info.value.hint
    with open(store.path, "rb") as handle:
        assert handle.read() == before
    assert store.read() == PAYLOAD


def test_file_overwrites_when_told(store):
    store.write(PAYLOAD)
    replacement = dict(PAYLOAD, root_token="s.NewRoot")
    store.write(replacement, overwrite=True)
    assert store.read() == replacement


def test_empty_file_counts_as_absent(store):
    open(store.path, "wb").close()
    assert not store.exists()
    store.write(PAYLOAD)  # no overwrite needed
    assert store.read() == PAYLOAD


def test_missing_file_has_a_hint(store):
    with pytest.raises(KeystoreError) as info:
        store.read()
    assert "does not exist" in info.value.message and store.path in info.value.message
    assert "init_file" in info.value.hint


def test_wrong_password(store):
    store.write(PAYLOAD)
    with pytest.raises(KeystoreError) as info:
        FileStore(store.path, "not-the-password").read()
    assert "wrong vault password" in info.value.message
    assert info.value.hint


@pytest.mark.parametrize("plain", [b"not json", b'["a", "list"]', b'{"root_token": "s.x"}'],
                         ids=["not-json", "not-a-dict", "no-version"])
def test_decrypts_but_is_not_init_material(store, plain):
    with open(store.path, "wb") as handle:
        handle.write(ansible_vault.encrypt(plain, PASSWORD))
    with pytest.raises(KeystoreError, match="not init material"):
        store.read()


def test_missing_directory_is_refused_before_writing(tmp_path):
    target = FileStore(str(tmp_path / "missing" / "init.vault"), PASSWORD)
    with pytest.raises(KeystoreError, match="does not exist"):
        target.write(PAYLOAD)
    assert not (tmp_path / "missing").exists()


def test_loose_permissions_are_reported(store):
    store.write(PAYLOAD)
    os.chmod(store.path, 0o644)
    assert store.permission_warnings() == ["%s has mode 0644; it should be 0600" % store.path]


def test_file_store_requires_a_path():
    with pytest.raises(KeystoreError, match="init_file is required"):
        FileStore(None, PASSWORD)


@pytest.mark.parametrize("payload, expected", [
    ({"unseal_keys_b64": ["a", "b"]}, ["a", "b"]),
    ({"recovery_keys_b64": ["r"]}, ["r"]),
    ({"unseal_keys_b64": [], "recovery_keys_b64": ["r"]}, ["r"]),
    ({"root_token": "s.x"}, []),
])
def test_unseal_keys(payload, expected):
    assert unseal_keys(payload) == expected


# -- read_password -----------------------------------------------------------------------------

@pytest.fixture
def no_password_env(monkeypatch):
    monkeypatch.delenv("HERACLES_INIT_FILE_PASSWORD_FILE", raising=False)


def _password_file(tmp_path, content, name="password"):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


# (id, init_file_password, init_file_password_file, HERACLES_INIT_FILE_PASSWORD_FILE, expected);
# "FILE" and "ENV" stand for password files holding "from-file" and "from-env".
READ_PASSWORD_CASES = [
    ("option", "from-option", None, None, "from-option"),
    ("option-beats-file-and-env", "from-option", "FILE", "ENV", "from-option"),
    ("file", None, "FILE", None, b"from-file"),
    ("file-beats-env", None, "FILE", "ENV", b"from-file"),
    ("env", None, None, "ENV", b"from-env"),
    ("empty-option-falls-through", "", "FILE", None, b"from-file"),
]


@pytest.mark.parametrize("option, option_file, env_file, expected", [c[1:] for c in READ_PASSWORD_CASES],
                         ids=[c[0] for c in READ_PASSWORD_CASES])
def test_read_password(tmp_path, monkeypatch, no_password_env, option, option_file, env_file, expected):
    files = {"FILE": _password_file(tmp_path, b"from-file\n", "file"),
             "ENV": _password_file(tmp_path, b"  from-env\n", "env")}
    params = {"init_file_password": option, "init_file_password_file": files.get(option_file)}
    if env_file:
        monkeypatch.setenv("HERACLES_INIT_FILE_PASSWORD_FILE", files[env_file])
    assert read_password(params) == expected


@pytest.mark.parametrize("case, message", [
    ("nothing", "No password"),
    ("missing-file", "Cannot read init_file_password_file"),
    ("empty-file", "is empty"),
])
def test_read_password_failures(tmp_path, no_password_env, case, message):
    params = {}
    if case == "missing-file":
        params["init_file_password_file"] = str(tmp_path / "nope")
    elif case == "empty-file":
        params["init_file_password_file"] = _password_file(tmp_path, b"\n")
    with pytest.raises(KeystoreError, match=message) as info:
        read_password(params)
    assert info.value.hint


# -- open_store -----------------------------------------------------------------------------------

def test_open_store_file(tmp_path, no_password_env):
    store = open_store({"init_store": "file", "init_file": str(tmp_path / "init.vault"),
                        "init_file_password": "pw"})
    assert isinstance(store, FileStore)
    assert (store.path, store.password, store.kind) == (str(tmp_path / "init.vault"), "pw", "file")


def test_open_store_defaults_to_file(tmp_path, no_password_env):
    store = open_store({"init_file": str(tmp_path / "init.vault"), "init_file_password": "pw"})
    assert isinstance(store, FileStore)


def test_open_store_file_needs_a_password(tmp_path, no_password_env):
    with pytest.raises(KeystoreError, match="No password"):
        open_store({"init_store": "file", "init_file": str(tmp_path / "init.vault")})


def test_open_store_aws(aws_env):
    store = open_store({"init_store": "aws_secretsmanager", "aws_secret_name": "heracles/x",
                        "aws_kms_key_id": "alias/k", "aws_region": "eu-west-1",
                        "aws_endpoint_url": "http://127.0.0.1:1"})
    assert isinstance(store, AwsSecretsManagerStore)
    assert (store.name, store.kms_key_id, store.location) == ("heracles/x", "alias/k", "secretsmanager:heracles/x")
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:1"


def test_open_store_aws_needs_a_name(aws_env):
    with pytest.raises(KeystoreError, match="aws_secret_name is required"):
        open_store({"init_store": "aws_secretsmanager"})


# -- AwsSecretsManagerStore against a moto server ----------------------------------------------------

@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield "http://127.0.0.1:%d" % port
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # an unreachable endpoint fails at once
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def kms_key(moto_endpoint, aws_env):
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_endpoint)
    return kms.create_key(Description="heracles unit test")["KeyMetadata"]["Arn"]


@pytest.fixture
def aws_store(moto_endpoint, kms_key):
    return AwsSecretsManagerStore("heracles/test/%s" % uuid.uuid4().hex, kms_key, "us-east-1", moto_endpoint)


def test_aws_roundtrip(aws_store):
    assert not aws_store.exists()
    aws_store.check_writable()
    aws_store.write(PAYLOAD)
    assert aws_store.exists()
    assert aws_store.read() == PAYLOAD
    assert aws_store.permission_warnings() == []


def test_aws_secret_is_under_the_kms_key(aws_store, moto_endpoint, kms_key):
    aws_store.write(PAYLOAD)
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    meta = sm.describe_secret(SecretId=aws_store.name)
    assert meta["KmsKeyId"] == kms_key
    assert "heracles.secrets" in meta["Description"]
    for value in SECRET_VALUES:
        assert value not in json.dumps(meta, default=str)


def test_aws_refuses_to_overwrite(aws_store, moto_endpoint):
    aws_store.write(PAYLOAD)
    with pytest.raises(KeystoreError) as info:
        aws_store.write(dict(PAYLOAD, root_token="s.AnotherCluster"))
    assert aws_store.location in info.value.message
    assert "overwrite_init_file" in info.value.hint
    assert aws_store.read() == PAYLOAD
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    assert len(sm.list_secret_version_ids(SecretId=aws_store.name)["Versions"]) == 1


def test_aws_overwrites_when_told(aws_store):
    aws_store.write(PAYLOAD)
    replacement = dict(PAYLOAD, root_token="s.NewRoot")
    aws_store.write(replacement, overwrite=True)
    assert aws_store.read() == replacement


def test_aws_missing_secret(aws_store):
    with pytest.raises(KeystoreError) as info:
        aws_store.read()
    assert "ResourceNotFoundException" in info.value.message
    assert "GetSecretValue" in info.value.hint


def test_aws_secret_that_is_not_init_material(aws_store, moto_endpoint):
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    sm.create_secret(Name=aws_store.name, SecretString='{"password": "x"}')
    assert aws_store.exists()
    with pytest.raises(KeystoreError, match="not init material"):
        aws_store.read()


@pytest.mark.parametrize("operation", ["write", "read", "exists", "check_writable"])
def test_aws_unreachable_endpoint(aws_env, operation):
    store = AwsSecretsManagerStore("heracles/unreachable", None, "us-east-1", "http://127.0.0.1:%d" % free_port())
    call = getattr(store, operation)
    with pytest.raises(KeystoreError) as info:
        call(PAYLOAD) if operation == "write" else call()
    assert "Cannot reach AWS Secrets Manager" in info.value.message
    assert "endpoint" in info.value.hint
