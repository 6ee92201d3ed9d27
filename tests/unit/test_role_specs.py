"""Every role's contract: meta/argument_specs.yml names every default of defaults/main.yml, with the same value."""

import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(n for n in os.listdir(os.path.join(ROOT, "roles")) if os.path.isdir(os.path.join(ROOT, "roles", n)))


def read(*parts):
    path = os.path.join(ROOT, "roles", *parts)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_and_defaults_agree(role):
    specs = read(role, "meta", "argument_specs.yml")
    assert specs, "roles/%s has no meta/argument_specs.yml" % role
    options = specs["argument_specs"]["main"].get("options") or {}
    defaults = read(role, "defaults", "main.yml") or {}
    assert sorted(set(defaults) - set(options)) == [], "defaults without a spec"
    for name, value in defaults.items():
        assert "default" in options[name], "%s: the spec gives no default" % name
        assert options[name]["default"] == value, name
        assert options[name].get("description"), "%s: no description" % name
    for name, option in options.items():
        assert name.startswith(role + "_") or name.startswith("heracles_"), name  # the role's prefix
        if "default" in option:
            assert name in defaults, "%s: a spec default that defaults/main.yml does not set" % name
