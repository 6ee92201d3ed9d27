"""vault_kv_seed's lean masking prints exactly what AnsibleModule's own masking prints, in linear time."""

import random
import string

import pytest
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.heracles.secrets.plugins.modules import vault_kv_seed as seed


def no_log_values(secrets, **other):
    """The module's no_log values as AnsibleModule collects them: every non-empty string and number, recursively."""
    out = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)) or value:
            out.add(str(value))

    walk(secrets)
    walk(other)
    return out


def both(params, values, result):
    """(what AnsibleModule prints today, what it prints with lean_masking) for the same result."""
    original = remove_values(dict(result, invocation=dict(module_args=params)), values)
    lean = seed.lean_masking(params, values, result)
    assert lean is not None
    invocation, kept = lean
    return original, remove_values(dict(result, invocation=invocation), kept), kept


def params_for(secrets, **extra):
    params = dict(url="https://127.0.0.1:8200", nodes=["https://127.0.0.1:8210"], mount="kv-dev", prefix="apps",
                  secrets=secrets, generate={}, mode="merge", concurrency=16, token=None, timeout=10)
    params.update(extra)
    return params


def result_for(secrets):
    paths = sorted(secrets)
    return dict(changed=True, created=len(paths), updated=0, unchanged=0, deleted=0,
                paths=dict(created=paths, updated=[], unchanged=[], deleted=[], conflicts=[]), conflicts=[],
                versions=dict((p, 1) for p in paths), seconds=0.25, msg=None, vault_endpoint="https://127.0.0.1:8200",
                leader_changes=[])


def test_typical_seed_keeps_only_values_that_occur():
    secrets = dict(("apps/team/s%03d" % i, dict(username="user-%d" % i, password="pw-%032x" % i, port=5432,
                                                url="https://db.example/%d" % i)) for i in range(300))
    params = params_for(secrets)
    original, lean, kept = both(params, no_log_values(secrets), result_for(secrets))
    assert lean == original
    assert kept == []  # no secret value occurs in the paths, counts or connection settings: nothing to scan for


def test_short_values_that_occur_in_paths_and_counts_are_still_masked():
    secrets = {"apps/x/a": {"u": "apps", "n": 1, "e": "", "b": True, "l": ["q", 2], "d": {"z": "zz"}},
               "apps/x/b": {"f": 0.5, "star": "**", "none": None}}
    params = params_for(secrets)
    original, lean, kept = both(params, no_log_values(secrets), result_for(secrets))
    assert lean == original
    assert [p.lstrip("*") for p in lean["paths"]["created"]] == ["/x/a", "/x/b"]  # "apps" masked
    assert lean["invocation"]["module_args"]["secrets"]["apps/x/a"]["u"] == seed.NO_LOG_PLACEHOLDER
    assert "**" in kept


def test_falls_back_when_a_value_is_part_of_the_placeholder():
    secrets = {"apps/x/a": {"k": "LOG"}}
    params = params_for(secrets, mount="VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    assert seed.lean_masking(params, no_log_values(secrets), result_for(secrets)) is None


def test_falls_back_on_types_it_does_not_know():
    secrets = {"apps/x/a": {"k": object()}}
    assert seed.lean_masking(params_for(secrets), {"x"}, result_for({"apps/x/a": {}})) is None


@pytest.mark.parametrize("seed_value", range(40))
def test_random_overlapping_values_give_the_same_output(seed_value):
    rng = random.Random(seed_value)
    alphabet = "ab/1*-" if seed_value % 2 else string.ascii_lowercase[:4] + "/1"

    def word(low, high):
        return "".join(rng.choice(alphabet) for dummy in range(rng.randint(low, high)))

    secrets = {}
    for dummy in range(rng.randint(1, 25)):
        path = "apps/" + word(1, 6).strip("/*") + "x"
        secrets[path] = dict(("f%d" % i, rng.choice([word(0, 4), rng.randint(0, 20), True, None, [word(1, 3)]]))
                             for i in range(rng.randint(1, 3)))
    params = params_for(secrets, mount=word(1, 8), generate={next(iter(secrets)): {"pw": word(1, 5)}})
    values = no_log_values(secrets)
    result = result_for(secrets)
    result["msg"] = word(0, 30)
    lean = seed.lean_masking(params, values, result)
    original = remove_values(dict(result, invocation=dict(module_args=params)), values)
    if lean is None:
        return  # falls back to AnsibleModule's own masking: nothing to compare
    invocation, kept = lean
    assert remove_values(dict(result, invocation=invocation), kept) == original
