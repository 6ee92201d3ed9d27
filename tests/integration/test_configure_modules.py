"""vault_mount, vault_policy and vault_kv_seed against the real session cluster.

Each case uses its own mount/policy names, so the session cluster can be shared.
"""

import secrets as pysecrets
import uuid

import pytest

from heracles_testlib import find_leaks, run_module


def uid():
    return uuid.uuid4().hex[:8]


def three_ways(module, args, check_asserts=None):
    """check mode -> real -> rerun; return the real run's result."""
    check = run_module(module, args, check=True, diff=True)
    assert not check.failed, check
    assert check["changed"] is True
    if check_asserts:
        check_asserts()
    real = run_module(module, args, diff=True)
    assert not real.failed, real
    assert real["changed"] is True
    again = run_module(module, args)
    assert not again.failed, again
    assert again["changed"] is False, again
    return real


# ---------------------------------------------------------------- vault_mount
def test_kv2_mount_three_ways_and_ready(cluster):
    path = "kv-" + uid()
    args = cluster.conn(path=path, type="kv", options={"version": "2"}, description="test kv",
                        config=dict(default_lease_ttl="1h", max_lease_ttl="24h"),
                        kv_config=dict(max_versions=7, cas_required=False))
    root = cluster.hvac()
    real = three_ways("vault_mount", args,
                      lambda: pytest.fail("mount exists in check mode") if path + "/" in root.sys.list_mounted_secrets_engines()["data"] else None)
    assert real["created"] is True
    # usable at once: the module waited out the kv-v2 upgrade window
    root.secrets.kv.v2.create_or_update_secret(path="x", secret={"a": "b"}, mount_point=path)
    assert root.adapter.get("/v1/%s/config" % path)["data"]["max_versions"] == 7
    assert real["mount"]["config"]["default_lease_ttl"] == 3600


def test_mount_tune_ttl_by_value(cluster):
    path = "kv-" + uid()
    base = cluster.conn(path=path, type="kv", options={"version": "2"}, config=dict(max_lease_ttl="2h"))
    assert not run_module("vault_mount", base).failed
    same = run_module("vault_mount", dict(base, config=dict(max_lease_ttl=7200)))
    assert same["changed"] is False
    tuned = run_module("vault_mount", dict(base, config=dict(max_lease_ttl="3h"), description="new"), diff=True)
    assert tuned["changed"] is True and tuned["tuned"] == ["description", "max_lease_ttl"]
    assert tuned["mount"]["config"]["max_lease_ttl"] == 10800


def test_auth_mount(cluster):
    path = "approle-" + uid()
    three_ways("vault_mount", cluster.conn(path=path, kind="auth", type="approle", config=dict(default_lease_ttl="30m")))
    assert path + "/" in cluster.hvac().sys.list_auth_methods()["data"]


def test_mount_type_clash_refused(cluster):
    path = "kv-" + uid()
    assert not run_module("vault_mount", cluster.conn(path=path, type="kv", options={"version": "2"})).failed
    res = run_module("vault_mount", cluster.conn(path=path, type="transit"))
    assert res.failed and "destroy its data" in res["msg"]
    assert cluster.hvac().sys.list_mounted_secrets_engines()["data"][path + "/"]["type"] == "kv"


def test_unknown_mount_type_fails_and_enables_nothing(cluster):
    path = "bogus-" + uid()
    res = run_module("vault_mount", cluster.conn(path=path, type="no-such-engine"))
    assert res.failed and "no-such-engine" in res["msg"]
    assert path + "/" not in cluster.hvac().sys.list_mounted_secrets_engines()["data"]


def test_mount_absent(cluster):
    path = "transit-" + uid()
    assert not run_module("vault_mount", cluster.conn(path=path, type="transit")).failed
    res = three_ways("vault_mount", cluster.conn(path=path, state="absent"))
    assert res["changed"] is True
    assert path + "/" not in cluster.hvac().sys.list_mounted_secrets_engines()["data"]


# ---------------------------------------------------------------- vault_policy
POLICY = 'path "kv-%s/data/app/*" {\n  capabilities = ["read"]\n}\n'


def test_policy_three_ways_and_diff(cluster):
    name = "p-" + uid()
    args = cluster.conn(name=name, policy=POLICY % "a")
    real = three_ways("vault_policy", args)
    assert real["created"] == [name]
    assert cluster.hvac().sys.read_acl_policy(name)["data"]["policy"].strip() == (POLICY % "a").strip()
    upd = run_module("vault_policy", cluster.conn(name=name, policy=POLICY % "b"), diff=True)
    assert upd["updated"] == [name] and 'kv-a' in upd["diff"]["before"] and 'kv-b' in upd["diff"]["after"]


def test_policy_whitespace_is_not_a_change(cluster):
    name = "p-" + uid()
    assert not run_module("vault_policy", cluster.conn(name=name, policy=POLICY % "a")).failed
    res = run_module("vault_policy", cluster.conn(name=name, policy="\n" + (POLICY % "a").replace("\n", "  \n") + "\n\n"))
    assert res["changed"] is False


@pytest.mark.parametrize("bad,why", [
    ('path "x/*" {\n capabilities = ["read"]\n', "unbalanced"),
    ('path "x/*" {\n capabilities = ["read"\n}\n', "does not parse"),
    ('path "x/*" {\n capabilitiez = ["read"]\n}\n', "does not parse"),
])
def test_unparseable_policy_changes_nothing(cluster, bad, why):
    good, broken = "p-" + uid(), "p-" + uid()
    before = set(cluster.hvac().sys.list_acl_policies()["data"]["keys"])
    res = run_module("vault_policy", cluster.conn(policies={good: POLICY % "a", broken: bad}))
    assert res.failed and why in res["msg"] and broken in res["msg"]
    after = set(cluster.hvac().sys.list_acl_policies()["data"]["keys"])
    assert after == before, after ^ before


def test_policy_exclusive_keeps_builtins_and_keep(cluster, tmp_path):
    # exclusive mode on the shared cluster would delete other tests' policies: use keep patterns
    mine = ["ex-%s-%d" % (uid(), i) for i in range(3)]
    for name in mine:
        assert not run_module("vault_policy", cluster.conn(name=name, policy=POLICY % "a")).failed
    others = [n for n in cluster.hvac().sys.list_acl_policies()["data"]["keys"]
              if n not in mine and n not in ("root", "default")]
    args = cluster.conn(policies={mine[0]: POLICY % "a"}, exclusive=True, keep=others)
    res = run_module("vault_policy", args, check=True)
    assert sorted(res["deleted"]) == sorted(mine[1:])
    res = run_module("vault_policy", args)
    assert not res.failed and sorted(res["deleted"]) == sorted(mine[1:])
    keys = cluster.hvac().sys.list_acl_policies()["data"]["keys"]
    assert "default" in keys and "root" in keys and mine[0] in keys and mine[1] not in keys
    assert all(o in keys for o in others)


# ---------------------------------------------------------------- vault_kv_seed
@pytest.fixture(scope="module")
def kv_mount(cluster):
    path = "kv-seed-" + uid()
    res = run_module("vault_mount", cluster.conn(path=path, type="kv", options={"version": "2"}))
    assert not res.failed, res
    return path


def listing(cluster, mount, path=""):
    import hvac.exceptions
    try:
        return cluster.hvac().secrets.kv.v2.list_secrets(path=path, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []


def versions(cluster, mount, paths):
    root = cluster.hvac()
    return dict((p, root.secrets.kv.v2.read_secret_metadata(p, mount_point=mount)["data"]["current_version"])
                for p in paths)


def test_seed_three_ways_no_versions_on_rerun(cluster, kv_mount):
    data = dict(("apps/s%03d" % i, dict(user="user-%d" % i, password=pysecrets.token_hex(16), url="https://db/%d" % i)) for i in range(60))
    args = cluster.conn(mount=kv_mount, prefix="apps", secrets=data)
    check = run_module("vault_kv_seed", args, check=True, diff=True)
    assert not check.failed and check["created"] == 60
    assert listing(cluster, kv_mount, "apps") == []
    real = run_module("vault_kv_seed", args, diff=True)
    assert not real.failed, real
    assert (real["created"], real["updated"], real["unchanged"]) == (60, 0, 0)
    before = versions(cluster, kv_mount, data)
    assert set(before.values()) == {1}
    again = run_module("vault_kv_seed", args)
    assert again["changed"] is False and again["unchanged"] == 60
    assert versions(cluster, kv_mount, data) == before
    root = cluster.hvac()
    for path, fields in list(data.items())[:5]:
        assert root.secrets.kv.v2.read_secret_version(path, mount_point=kv_mount,
                                                      raise_on_deleted_version=True)["data"]["data"] == fields
    values = [f["password"] for f in data.values()]
    for res in (check, real, again):
        assert not find_leaks(values, [("stdout", res.stdout), ("stderr", res.stderr)])


def test_seed_check_mode_writes_nothing(cluster, kv_mount):
    res = run_module("vault_kv_seed", cluster.conn(mount=kv_mount, prefix="chk", secrets={"chk/a": {"k": "val-xyz"}}),
                     check=True)
    assert res["created"] == 1
    assert "chk/" not in listing(cluster, kv_mount)


def test_seed_merge_and_replace_and_diff_masks(cluster, kv_mount):
    secret = pysecrets.token_hex(8)
    base = cluster.conn(mount=kv_mount, prefix="mr")
    assert not run_module("vault_kv_seed", dict(base, secrets={"mr/x": {"a": "1", "b": secret}})).failed
    merged = run_module("vault_kv_seed", dict(base, secrets={"mr/x": {"a": "2"}}), diff=True)
    assert merged["updated"] == 1
    assert merged["diff"]["after"]["mr/x"] == {"a": "<redacted, changed>", "b": "<redacted>"}
    root = cluster.hvac()

    def read():
        return root.secrets.kv.v2.read_secret_version("mr/x", mount_point=kv_mount, raise_on_deleted_version=True)["data"]

    assert read()["data"] == {"a": "2", "b": secret}
    replaced = run_module("vault_kv_seed", dict(base, mode="replace", secrets={"mr/x": {"a": "2"}}), diff=True)
    assert replaced["updated"] == 1 and "b" not in replaced["diff"]["after"]["mr/x"]
    assert read()["data"] == {"a": "2"} and read()["metadata"]["version"] == 3
    assert secret not in merged.stdout and secret not in replaced.stdout


def test_seed_generated_fields_only_once(cluster, kv_mount):
    root = cluster.hvac()
    root.adapter.post("/v1/sys/policies/password/test-pw",
                      json={"policy": 'length = 24\nrule "charset" {\n  charset = "abcdefghijklmnopqrstuvwxyz0123456789"\n}\n'})
    args = cluster.conn(mount=kv_mount, prefix="gen", secrets={"gen/db": {"user": "app"}},
                        generate={"gen/db": {"password": "test-pw"}})
    first = run_module("vault_kv_seed", args)
    assert first["created"] == 1
    stored = root.secrets.kv.v2.read_secret_version("gen/db", mount_point=kv_mount, raise_on_deleted_version=True)["data"]["data"]
    assert len(stored["password"]) == 24 and stored["user"] == "app"
    assert stored["password"] not in first.stdout
    again = run_module("vault_kv_seed", args)
    assert again["changed"] is False


def test_seed_prune(cluster, kv_mount):
    base = cluster.conn(mount=kv_mount, prefix="pr")
    assert not run_module("vault_kv_seed", dict(base, secrets={"pr/a": {"k": "value-a"}, "pr/b/c": {"k": "value-c"}})).failed
    check = run_module("vault_kv_seed", dict(base, prune=True, secrets={"pr/a": {"k": "value-a"}}), check=True)
    assert check["deleted"] == 1 and check["paths"]["deleted"] == ["pr/b/c"]
    real = run_module("vault_kv_seed", dict(base, prune=True, secrets={"pr/a": {"k": "value-a"}}))
    assert real["deleted"] == 1
    again = run_module("vault_kv_seed", dict(base, prune=True, secrets={"pr/a": {"k": "value-a"}}))
    assert again["changed"] is False


@pytest.mark.parametrize("secrets,prefix,why", [
    ({"apps/a": "not-a-mapping"}, "apps", "must be a mapping"),
    ({"other/a": {"k": "val-xyz"}}, "apps", "outside the allowed prefix"),
    ({"apps/../x": {"k": "val-xyz"}}, "apps", "'..'"),
    ({"/apps/a": {"k": "val-xyz"}}, "apps", "relative"),
])
def test_seed_bad_input_writes_nothing(cluster, kv_mount, secrets, prefix, why):
    good = {"apps/ok-" + uid(): {"k": "val-xyz"}}
    good.update(secrets)
    res = run_module("vault_kv_seed", cluster.conn(mount=kv_mount, prefix=prefix, secrets=good))
    assert res.failed and why in res["msg"] and "nothing was written" in res["msg"]
    assert not [k for k in listing(cluster, kv_mount, "apps") if k.startswith("ok-")]


def test_seed_prune_needs_prefix(cluster, kv_mount):
    res = run_module("vault_kv_seed", cluster.conn(mount=kv_mount, prune=True, secrets={"a": {"k": "val-xyz"}}))
    assert res.failed and "prune=true needs prefix" in res["msg"]
