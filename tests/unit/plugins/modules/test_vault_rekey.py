"""vault_rekey's pure decisions: when a rekey is due, what the stored document becomes, which new shares pass."""

import base64
import os

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.modules.vault_rekey import (
    RekeyError, backup_material, check_new_keys, due_reasons, new_payload, parse_stamp)

DAY = 86400
CREATED = "2026-01-01T00:00:00+00:00"
T0 = parse_stamp(CREATED)


def share(i, size=32):
    return base64.b64encode(bytes([i]) * size + bytes([i + 1])).decode()


@pytest.mark.parametrize("payload, now, force, shape, expect", [
    (dict(created_at=CREATED), T0 + 10 * DAY, False, (5, 3), []),
    (dict(created_at=CREATED), T0 + 91 * DAY, False, (5, 3), ["keys are 91 days old (max_age 90d)"]),
    (dict(created_at=CREATED, rekeyed_at="2026-03-15T00:00:00+00:00"), T0 + 91 * DAY, False, (5, 3), []),
    (dict(created_at=CREATED), T0 + DAY, True, (5, 3), ["force=true"]),
    (dict(created_at=CREATED), T0 + DAY, False, (7, 4), ["shares/threshold 5/3 -> 7/4"]),
    (dict(), T0, False, (5, 3), ["the material records no rekeyed_at/created_at"]),
    (dict(created_at="not a date"), T0, False, (5, 3), ["the material records no rekeyed_at/created_at"]),
], ids=["young", "old", "rekeyed-recently", "force", "new-shape", "no-date", "bad-date"])
def test_due_reasons(payload, now, force, shape, expect):
    reasons, dummy = due_reasons(payload, now, 90 * DAY, force, shape[0], shape[1], 5, 3, "90d")
    assert reasons == expect


def test_parse_stamp_accepts_z_and_naive_as_utc():
    assert parse_stamp("2026-01-01T00:00:00Z") == parse_stamp("2026-01-01T00:00:00") == T0


def test_new_payload_keeps_everything_but_the_keys():
    old = dict(version=1, created_at=CREATED, url="https://x:8200", seal_type="shamir", root_token="r",
               shares=5, threshold=3, unseal_keys_b64=[share(i) for i in range(5)])
    new = new_payload(old, False, [share(i) for i in range(10, 17)], 7, 4, "nonce-1", "/x.bak", "2026-02-01T00:00:00+00:00")
    assert new["unseal_keys_b64"] == [share(i) for i in range(10, 17)] and (new["shares"], new["threshold"]) == (7, 4)
    assert new["root_token"] == "r" and new["created_at"] == CREATED and new["url"] == "https://x:8200"
    assert new["rekeyed_at"] == "2026-02-01T00:00:00+00:00" and new["rekey_nonce"] == "nonce-1"
    assert new["previous_backup"] == "/x.bak" and old["unseal_keys_b64"] == [share(i) for i in range(5)]
    assert keystore.unseal_keys(new) == new["unseal_keys_b64"]
    rec = new_payload(dict(old, unseal_keys_b64=None, recovery_keys_b64=["a"]), True, [share(1)], 1, 1, "n", "b", "t")
    assert rec["recovery_keys_b64"] == [share(1)] and keystore.unseal_keys(rec) == [share(1)]


@pytest.mark.parametrize("keys, shares, expect", [
    ([share(i) for i in range(5)], 5, None),
    ([share(i) for i in range(4)], 5, "returned 4 new key shares, expected 5"),
    ([share(1)] * 3, 3, "not distinct"),
    ([share(1), "!!notbase64!!", share(2)], 3, "not base64"),
    ([share(1, 32), share(2, 20), share(3, 32)], 3, "not distinct shares of one key"),
    ([base64.b64encode(b"short").decode()], 1, "not distinct shares of one key"),
], ids=["ok", "count", "duplicates", "not-base64", "lengths", "too-short"])
def test_check_new_keys(keys, shares, expect):
    if expect is None:
        check_new_keys(keys, shares)
    else:
        with pytest.raises(RekeyError, match=expect):
            check_new_keys(keys, shares)


def test_backup_is_a_0600_copy_and_never_overwrites(tmp_path):
    import datetime

    path = tmp_path / "init.vault"
    store = keystore.FileStore(str(path), "pw")
    store.write(dict(version=1, created_at=CREATED, unseal_keys_b64=[share(1)]))
    when = datetime.datetime(2026, 11, 23, 10, 0, 0, tzinfo=datetime.timezone.utc)
    first = backup_material(store, None, when)
    second = backup_material(store, None, when)
    assert first == str(path) + ".20261123T100000Z.bak" and second == str(path) + ".20261123T100000Z-1.bak"
    for name in (first, second):
        assert oct(os.stat(name).st_mode & 0o777) == "0o600"
        assert keystore.FileStore(name, "pw").read()["unseal_keys_b64"] == [share(1)]
