"""module.py: ``fingerprint()`` marks a secret in a diff without revealing it."""

import re

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils.module import fingerprint

VALUES = [
    ("token", "s.AbCdEf0123456789"),
    ("hex-looking", "0123456789abcdef0123"),
    ("bytes", b"\x00\xffbinary key"),
    ("unicode", u"m\u00f6t de passe"),
    ("number", 1234567890123),
]
# Every value is longer than the 12 hex digits, so "not in the marker" is a real check.


@pytest.mark.parametrize("value", [case[1] for case in VALUES], ids=[case[0] for case in VALUES])
def test_fingerprint_shape_and_secrecy(value):
    marker = fingerprint(value)
    assert re.match(r"^sha256:[0-9a-f]{12}$", marker)
    assert marker == fingerprint(value)  # deterministic: an unchanged value shows no diff
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    assert text not in marker


def test_fingerprint_is_sha256_prefix():
    # sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
    assert fingerprint("abc") == "sha256:ba7816bf8f01"


def test_fingerprint_str_and_bytes_agree():
    assert fingerprint("same") == fingerprint(b"same")


def test_fingerprint_differs_for_different_values():
    markers = set(fingerprint(case[1]) for case in VALUES)
    assert len(markers) == len(VALUES)


def test_fingerprint_of_none_is_none():
    assert fingerprint(None) is None
