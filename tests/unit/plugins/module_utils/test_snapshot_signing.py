"""snapshot_signing.py and the signing keys in keystore.py: what a signature proves, and what it refuses."""

import base64
import binascii
import json
import os

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import keystore
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_readback as readback
from ansible_collections.heracles.secrets.plugins.module_utils import snapshot_signing as signing
from ansible_collections.heracles.secrets.plugins.modules import vault_rekey

FACTS = dict(path="raft.snap", sha256="ab" * 32, size=1234, index=42, term=2, snapshot_id="bolt-snapshot")


def material(keys=1):
    payload = dict(version=1, root_token="s.root", unseal_keys_b64=["k1", "k2"])
    for dummy in range(keys):
        payload, dummy_id = keystore.add_signing_key(payload, "2026-01-01T00:00:00Z")
    return payload


def keyring(payload, signing_=True):
    ring = signing.Keyring()
    ring.add_material(payload, "test material", signing=signing_)
    return ring


def signed(tmp_path, payload, facts=None, cluster="c-1"):
    facts = facts or FACTS
    path = str(tmp_path / "raft.snap")
    with open(snap.signature_path(path), "w") as handle:
        handle.write(keyring(payload).sign(dict(facts, path=path), cluster))
    return path


def test_a_signature_verifies_and_names_key_and_cluster(tmp_path):
    payload = material()
    path = signed(tmp_path, payload)
    verdict = keyring(payload, signing_=False).verify(path, FACTS)
    assert verdict.valid and verdict.cluster_id == "c-1"
    result = verdict.result()
    assert result["key_id"] == keystore.signing_keys(payload)[0]["id"] and result["verified_with"] == "test material"


def edit(path, **changes):
    sig = snap.signature_path(path)
    doc = json.load(open(sig))
    doc.update(changes)
    open(sig, "w").write(json.dumps(doc))


@pytest.mark.parametrize("change, status, words", [
    (lambda p, f: (dict(f, sha256="cd" * 32), None), signing.INVALID, "signed for sha256 abababab"),
    (lambda p, f: (dict(f, size=1), None), signing.INVALID, "does not match the file"),
    (lambda p, f: (f, edit(p, cluster_id="c-2")), signing.INVALID, "MAC is wrong"),
    (lambda p, f: (f, edit(p, sha256="cd" * 32)), signing.INVALID, "MAC is wrong"),
    (lambda p, f: (f, edit(p, key_id="hmac-0000000000000000")), signing.UNKNOWN_KEY, "which neither"),
    (lambda p, f: (f, os.unlink(snap.signature_path(p))), signing.MISSING, "has no signature"),
    (lambda p, f: (f, open(snap.signature_path(p), "w").write("{not json")), signing.MALFORMED, "cannot be read"),
], ids=["other-file", "other-size", "edited-cluster", "edited-digest", "unknown-key", "missing", "malformed"])
def test_what_a_signature_refuses(tmp_path, change, status, words):
    payload = material()
    path = signed(tmp_path, payload)
    facts, dummy = change(path, FACTS)
    verdict = keyring(payload).verify(path, facts)
    assert verdict.status == status
    message, hint = verdict.error()
    assert words in message + hint
    assert "force=true does not override this" in hint


def test_a_key_of_another_material_does_not_verify(tmp_path):
    path = signed(tmp_path, material())
    assert keyring(material()).verify(path, FACTS).status == signing.UNKNOWN_KEY


def test_rotation_keeps_old_keys_verifying(tmp_path):
    old = material()
    old_path = signed(tmp_path, old)
    rotated, new_id = keystore.add_signing_key(old, "2026-02-01T00:00:00Z")
    ids = [entry["id"] for entry in keystore.signing_keys(rotated)]
    assert len(ids) == 2 and ids[-1] == new_id
    ring = keyring(rotated)
    assert ring.signer.key_id == new_id
    assert ring.verify(old_path, FACTS).valid


def test_a_rekey_keeps_the_signing_keys():
    """The decision: vault_rekey replaces key shares, not the snapshot signing key (old backups stay verifiable)."""
    payload = material(keys=2)
    after = vault_rekey.new_payload(payload, False, ["n1", "n2", "n3"], 3, 2, "nonce", "/x.bak", "2026-03-01T00:00:00Z")
    assert after["unseal_keys_b64"] == ["n1", "n2", "n3"]
    assert keystore.signing_keys(after) == keystore.signing_keys(payload)


def test_adopting_another_material_keeps_both_key_sets_and_the_new_signer(tmp_path):
    mine, theirs = material(), material()
    merged = keystore.merge_signing_keys(theirs, mine)
    ids = [entry["id"] for entry in keystore.signing_keys(merged)]
    assert ids == [keystore.signing_keys(mine)[0]["id"], keystore.signing_keys(theirs)[0]["id"]]
    assert merged["root_token"] == theirs["root_token"]
    assert keyring(merged).signer.key_id == ids[-1]
    assert keyring(merged).verify(signed(tmp_path, mine), FACTS).valid


def test_key_ids_and_signatures_hold_no_key_material(tmp_path):
    payload = material()
    secret = base64.b64decode(keystore.signing_keys(payload)[0]["key_b64"])
    path = signed(tmp_path, payload)
    text = open(snap.signature_path(path)).read() + signing.encode_metadata(open(snap.signature_path(path)).read())
    for needle in (keystore.signing_keys(payload)[0]["key_b64"], binascii.hexlify(secret).decode()):
        assert needle not in text
    assert len(secret) == keystore.SIGNING_KEY_BYTES


def test_s3_metadata_round_trip(tmp_path):
    text = open(snap.signature_path(signed(tmp_path, material()))).read()
    value = signing.encode_metadata(text)
    assert value.isascii() and "\n" not in value
    assert json.loads(signing.decode_metadata(value)) == json.loads(text)
    assert signing.decode_metadata("not base64 json") is None


@pytest.mark.parametrize("count, limit, expected", [
    (5, 10, [0, 1, 2, 3, 4]), (10, 5, [0, 2, 4, 7, 9]), (10, 1, [0]), (0, 3, []),
])
def test_readback_sample_is_spread_evenly(count, limit, expected):
    assert readback.sample(list(range(count)), limit) == expected


def test_server_errors_are_cleaned_to_one_line():
    text = "1 error occurred:\n\t* decryption failed: cipher: message authentication failed\n\n"
    assert readback.clean(text) == "decryption failed: cipher: message authentication failed"


class FakeAdapter:
    """sys/mounts, LIST and GET of a kv-v2 and a kv-v1 mount; some paths fail as the server would."""

    def __init__(self, broken=(), flaky=()):
        import hvac.exceptions as exc
        self.exc = exc
        self.broken, self.flaky, self.calls = set(broken), dict((p, 1) for p in flaky), []
        self.tree = {"kv2/metadata/": ["a", "dir/"], "kv2/metadata/dir/": ["b", "c"], "kv1/": ["x"]}

    def list(self, url, **kwargs):
        self.calls.append(("LIST", url))
        return {"data": {"keys": self.tree[url[len("/v1/"):]]}}

    def get(self, url, **kwargs):
        self.calls.append(("GET", url))
        if url == "/v1/sys/mounts":
            return {"data": {"kv2/": {"type": "kv", "options": {"version": "2"}}, "kv1/": {"type": "kv", "options": {}},
                             "sys/": {"type": "system"}}}
        path = url.split("/", 4)[-1]
        if self.flaky.get(path):
            self.flaky[path] -= 1
            raise self.exc.InternalServerError(errors=["local node not active but active cluster node not found"])
        if path in self.broken:
            raise self.exc.InternalServerError(errors=["1 error occurred:\n\t* decryption failed: cipher: message authentication failed\n"])
        if "/metadata/" in url:
            return {"data": {"current_version": 1, "versions": {"1": {"destroyed": False, "deletion_time": ""}}}}
        return {"data": {"data": {"value": "x"}}}


def FakeClient(adapter):  # noqa: N802 - stands where a class stood
    """An hvac client whose every request (through api.py's functions) goes to ``adapter``."""
    import hvac
    return hvac.Client(adapter=lambda **kwargs: adapter)


def test_readback_names_the_unreadable_paths_and_retries_what_heals():
    adapter = FakeAdapter(broken={"dir/c"}, flaky={"a"})
    report = readback.readback(readback.Reader(FakeClient(adapter), delay=0), limit=100)
    assert report["mounts"] == ["kv1 (kv v1)", "kv2 (kv v2)"] and report["secrets"] == 4 and report["checked"] == 4
    assert report["unreadable"] == [dict(mount="kv2", path="dir/c",
                                         error="decryption failed: cipher: message authentication failed")]
    assert readback.describe_unreadable(report) == "kv2/dir/c (decryption failed: cipher: message authentication failed)"
    # the broken entry was read once (no retry for what cannot heal), the flaky one twice
    assert adapter.calls.count(("GET", "/v1/kv2/metadata/dir/c")) == 1
    assert adapter.calls.count(("GET", "/v1/kv2/metadata/a")) == 2


def test_readback_samples_beyond_the_limit():
    report = readback.readback(readback.Reader(FakeClient(FakeAdapter()), delay=0), limit=2)
    assert report["secrets"] == 4 and report["checked"] == 2 and report["sampled"] is True
