"""ansible_vault.py: our ansible-vault 1.1 writer/reader, checked against ansible's own VaultLib."""

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.heracles.secrets.plugins.module_utils import ansible_vault
from ansible_collections.heracles.secrets.plugins.module_utils.ansible_vault import (
    VaultFormatError, decrypt, encrypt, is_encrypted,
)

PASSWORD = b"correct horse battery staple"

PLAINTEXTS = [
    ("empty", b""),
    ("one-byte", b"x"),
    ("one-block", b"0123456789abcdef"),  # exactly one AES block: padding adds a full block
    ("json", b'{"root_token": "s.abc", "unseal_keys_b64": ["a2V5MQ==", "a2V5Mg=="], "version": 1}'),
    ("unicode", u"cl\u00e9 \u2603\n".encode("utf-8")),
    ("binary-long", bytes(range(256)) * 9),
]


def ansible_vaultlib(password=PASSWORD):
    return VaultLib([("default", VaultSecret(password))])


@pytest.mark.parametrize("plaintext", [case[1] for case in PLAINTEXTS], ids=[case[0] for case in PLAINTEXTS])
def test_roundtrip(plaintext):
    blob = encrypt(plaintext, PASSWORD)
    assert blob.startswith(ansible_vault.HEADER + b"\n")
    assert is_encrypted(blob)
    if plaintext:
        assert plaintext not in blob
    assert decrypt(blob, PASSWORD) == plaintext


@pytest.mark.parametrize("plaintext", [case[1] for case in PLAINTEXTS], ids=[case[0] for case in PLAINTEXTS])
def test_ours_opens_with_ansible(plaintext):
    assert ansible_vaultlib().decrypt(encrypt(plaintext, PASSWORD)) == plaintext


@pytest.mark.parametrize("plaintext", [case[1] for case in PLAINTEXTS if case[1]],
                         ids=[case[0] for case in PLAINTEXTS if case[1]])
def test_ansibles_opens_with_ours(plaintext):
    assert decrypt(ansible_vaultlib().encrypt(plaintext), PASSWORD) == plaintext


def test_ansible_1_2_with_vault_id_opens_with_ours():
    blob = ansible_vaultlib().encrypt(b"with an id", secret=VaultSecret(PASSWORD), vault_id="prod")
    assert blob.startswith(b"$ANSIBLE_VAULT;1.2;AES256;prod")
    assert decrypt(blob, PASSWORD) == b"with an id"


@pytest.mark.parametrize("password", ["a str password", b"a bytes password"], ids=["str", "bytes"])
def test_str_and_bytes_inputs(password):
    assert decrypt(encrypt(u"text in", password), password) == b"text in"


def test_salt_is_random():
    assert encrypt(b"same", PASSWORD) != encrypt(b"same", PASSWORD)


def test_lines_are_80_columns_like_ansible():
    lines = encrypt(b"y" * 500, PASSWORD).splitlines()
    assert all(len(line) <= 80 for line in lines[1:])
    assert all(len(line) == 80 for line in lines[1:-1])


def test_wrong_password_is_refused():
    blob = encrypt(b"secret", PASSWORD)
    with pytest.raises(VaultFormatError, match="wrong vault password"):
        decrypt(blob, b"not the password")


def _flip_one_ciphertext_hex_digit(blob):
    header, body = blob.split(b"\n", 1)
    inner = bytes.fromhex(body.replace(b"\n", b"").decode())
    salt, mac, ciphertext = inner.split(b"\n", 2)
    ciphertext = ciphertext[:-1] + (b"0" if ciphertext[-1:] != b"0" else b"1")
    tampered = (b"\n".join([salt, mac, ciphertext])).hex().encode()
    return header + b"\n" + tampered + b"\n"


@pytest.mark.parametrize("mangle, message", [
    (_flip_one_ciphertext_hex_digit, "wrong vault password, or the file was modified"),
    (lambda blob: blob[:-20] + b"\n", "damaged|wrong vault password"),
    (lambda blob: blob.replace(b"\n", b"\nzz", 1), "damaged"),
    (lambda blob: blob.replace(b"1.1;AES256", b"1.1;AES128"), "unsupported"),
    (lambda blob: blob.replace(b"1.1;AES256", b"9.9;AES256"), "unsupported"),
    (lambda blob: b"plain: yaml\nroot_token: s.abc\n", "not an ansible-vault"),
    (lambda blob: b"", "not an ansible-vault"),
], ids=["ciphertext-bit", "truncated", "not-hex", "other-cipher", "other-version", "plaintext", "empty"])
def test_damaged_or_foreign_input_is_refused(mangle, message):
    with pytest.raises(VaultFormatError, match=message):
        decrypt(mangle(encrypt(b"secret material", PASSWORD)), PASSWORD)


@pytest.mark.parametrize("password", ["", b"", None])
def test_empty_password_is_refused(password):
    with pytest.raises(VaultFormatError, match="empty vault password"):
        encrypt(b"keys", password)


@pytest.mark.parametrize("data, expected", [
    (b"$ANSIBLE_VAULT;1.1;AES256\n3132", True),
    (u"  \n$ANSIBLE_VAULT;1.2;AES256;id\n", True),
    (b"ANSIBLE_VAULT", False),
    (u"{}", False),
])
def test_is_encrypted(data, expected):
    assert is_encrypted(data) is expected
