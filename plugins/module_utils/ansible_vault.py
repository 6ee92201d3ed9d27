# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible-vault 1.1 (AES256) file format, written and read from a module.

Why here and not ``ansible.parsing.vault``: modules run on the target host,
where only module_utils travel with them.  The format is small and stable
(PBKDF2-SHA256 10000 rounds, AES-256-CTR, HMAC-SHA256), and files written here
open with ``ansible-vault view`` -- a test checks that against ansible itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hmac as _hmac
import os

try:
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.hmac import HMAC
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

HEADER = b"$ANSIBLE_VAULT;1.1;AES256"
ITERATIONS = 10000
KEY_LEN = 32
IV_LEN = 16


class VaultFormatError(ValueError):
    """Not an ansible-vault 1.1 file, or the password is wrong."""


def _to_bytes(value):
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _derive(password, salt):
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=2 * KEY_LEN + IV_LEN, salt=salt,
                     iterations=ITERATIONS, backend=default_backend())
    derived = kdf.derive(_to_bytes(password))
    return derived[:KEY_LEN], derived[KEY_LEN:2 * KEY_LEN], derived[2 * KEY_LEN:]


def encrypt(plaintext, password):
    """Return the ansible-vault 1.1 text (bytes) of ``plaintext``."""
    if not password:
        raise VaultFormatError("an empty vault password cannot protect keys")
    salt = os.urandom(32)
    key1, key2, iv = _derive(password, salt)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(_to_bytes(plaintext)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key1), modes.CTR(iv), default_backend()).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    mac = HMAC(key2, hashes.SHA256(), default_backend())
    mac.update(ciphertext)
    body = b"\n".join([binascii.hexlify(salt), binascii.hexlify(mac.finalize()), binascii.hexlify(ciphertext)])
    body = binascii.hexlify(body)
    lines = [body[i:i + 80] for i in range(0, len(body), 80)]
    return HEADER + b"\n" + b"\n".join(lines) + b"\n"


def is_encrypted(data):
    return _to_bytes(data).lstrip().startswith(b"$ANSIBLE_VAULT;")


def decrypt(vaulttext, password):
    """Return the plaintext bytes; raise VaultFormatError on a bad file or password."""
    data = _to_bytes(vaulttext).strip()
    lines = data.splitlines()
    if not lines or not lines[0].startswith(b"$ANSIBLE_VAULT;"):
        raise VaultFormatError("not an ansible-vault encrypted file")
    header = lines[0].strip().split(b";")
    if len(header) < 3 or header[1] not in (b"1.1", b"1.2") or header[2] != b"AES256":
        raise VaultFormatError("unsupported ansible-vault format %r" % lines[0][:40])
    try:
        body = binascii.unhexlify(b"".join(line.strip() for line in lines[1:]))
        salt_hex, mac_hex, cipher_hex = body.split(b"\n", 2)
        salt = binascii.unhexlify(salt_hex)
        expected = binascii.unhexlify(mac_hex)
        ciphertext = binascii.unhexlify(cipher_hex)
    except (binascii.Error, ValueError):
        raise VaultFormatError("the ansible-vault file is damaged (not hex)")
    key1, key2, iv = _derive(password, salt)
    mac = HMAC(key2, hashes.SHA256(), default_backend())
    mac.update(ciphertext)
    if not _hmac.compare_digest(mac.finalize(), expected):
        raise VaultFormatError("wrong vault password, or the file was modified (HMAC mismatch)")
    decryptor = Cipher(algorithms.AES(key1), modes.CTR(iv), default_backend()).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
