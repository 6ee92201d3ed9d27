"""The Helm releases' values against the charts' own ``values.schema.json`` and ``values.yaml`` (issue 14, item 7).

Helm coalesces the user's values over the chart's ``values.yaml`` and validates the result against
``values.schema.json`` before it renders anything; a violation fails ``helm install``/``upgrade``, i.e. the
``pulumi up`` of the platform stack. These tests do the same with the upstream files stored under
``tests/data/charts/`` (see its README for sources and refreshing), for every stack's ``vault`` and
``external-secrets`` releases and for the ``openbao`` variant's release.

None of the three schemas forbids unknown keys (no ``additionalProperties: false``), so Helm would accept a
misspelt key and the chart would silently ignore it. ``unknown_keys`` is the stricter check: every key path we
set must exist in the chart's ``values.yaml``, except below the few maps whose keys are ours (``FREE_FORM``).
"""

import copy
import hashlib
import json
import os
import re

import pytest
import yaml
from jsonschema import Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator

import harness
from harness import unwrap
from runs import platform

CHART_DIR = os.path.join(harness.REPO_ROOT, "tests", "data", "charts")
RELEASE = "kubernetes:helm.sh/v3:Release"

# The Helm repository each stored chart comes from (the release's repositoryOpts.repo must match).
CHART_REPOS = {
    "vault": "https://helm.releases.hashicorp.com",
    "openbao": "https://openbao.github.io/openbao-helm",
    "external-secrets": "https://charts.external-secrets.io",
}

# (variant of tests/pulumi/runs.py, chart): the releases checked for every stack. The openbao variant's ESO
# release is the same as the stack's, so it is not checked twice.
RELEASES = (("stack", "vault"), ("stack", "external-secrets"), ("openbao", "openbao"))

# Maps whose keys are ours to choose (Kubernetes objects, annotations, environment variables), so their keys
# cannot be in the chart's values.yaml. Each path itself must exist there (test_exemptions_are_what_they_claim).
FREE_FORM = {
    "vault": ("server.extraEnvironmentVars", "server.serviceAccount.annotations", "server.affinity",
              "server.resources", "server.statefulSet.securityContext.pod"),
    "openbao": ("server.extraEnvironmentVars", "server.serviceAccount.annotations", "server.affinity",
                "server.resources", "server.statefulSet.securityContext.pod"),
    "external-secrets": ("serviceAccount.annotations", "resources", "webhook.resources", "certController.resources"),
}
# Keys the chart's templates read although its values.yaml does not declare them.
TEMPLATE_ONLY = {
    # templates/_helpers.tpl, `define "vault.fullname"` / `define "openbao.fullname"`: .Values.fullnameOverride
    "vault": ("fullnameOverride",),
    "openbao": ("fullnameOverride",),
    "external-secrets": (),
}
# Key paths our values set that the chart does not have, each waiting for its fix in the program. The test
# fails on any other unknown key, and on an entry here that the values no longer contain (remove it then).
PENDING_FIXES = {
    "vault": (),
    "openbao": (),
    "external-secrets": (),
}

# $schema -> draft, as Helm's validator (github.com/santhosh-tekuri/jsonschema/v6, draftFromURL) reads it:
# scheme http/https and an empty fragment ignored, json-schema.org/schema meaning the latest draft.
DRAFTS = {
    "json-schema.org/schema": Draft202012Validator,
    "json-schema.org/draft/2020-12/schema": Draft202012Validator,
    "json-schema.org/draft/2019-09/schema": Draft201909Validator,
    "json-schema.org/draft-07/schema": Draft7Validator,
    "json-schema.org/draft-06/schema": Draft6Validator,
    "json-schema.org/draft-04/schema": Draft4Validator,
}


def stored(chart, version, kind):
    """tests/data/charts/<chart>-<version>.values.<kind> (kind: schema.json or yaml), parsed."""
    path = os.path.join(CHART_DIR, "%s-%s.values.%s" % (chart, version, kind))
    assert os.path.isfile(path), "no stored %s for chart %s %s: see tests/data/charts/README.md" % (
        os.path.basename(path), chart, version)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle) if kind == "schema.json" else yaml.safe_load(handle)


def validator_class(schema):
    url = schema.get("$schema")
    if url is None:
        return Draft202012Validator  # the validator's default draft
    base, fragment = (url.split("#", 1) + [""])[:2]
    assert not fragment, "a $schema with a fragment is not a draft Helm knows: %r" % url
    for scheme in ("http://", "https://"):
        if base.startswith(scheme):
            base = base[len(scheme):]
            break
    assert base in DRAFTS, "unknown $schema %r" % url
    return DRAFTS[base]


def coalesce(defaults, values):
    """Helm's merge of user values over chart defaults: maps merged, anything else replaced, null deletes."""
    merged = copy.deepcopy(defaults) if isinstance(defaults, dict) else {}
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def schema_errors(chart, version, values):
    """["<path>: <message>"] of the coalesced values against the chart's schema; empty when valid.

    Numbers reach the provider (and these mocks) as doubles, 3 as 3.0: an integer for every draft from 6 on,
    as for Helm's validator.
    """
    schema = stored(chart, version, "schema.json")
    merged = coalesce(stored(chart, version, "yaml"), values)
    validator = validator_class(schema)(schema)
    return ["%s: %s" % (".".join(str(part) for part in error.absolute_path) or "<root>", error.message)
            for error in sorted(validator.iter_errors(merged), key=lambda error: list(error.absolute_path))]


def unknown_keys(chart, version, values):
    """Key paths in ``values`` that the chart's values.yaml does not have (outside FREE_FORM/TEMPLATE_ONLY)."""
    free_form = FREE_FORM[chart]
    template_only = TEMPLATE_ONLY[chart]
    unknown = []

    def walk(ours, theirs, prefix):
        for key, value in ours.items():
            path = prefix + key
            if path in template_only:
                continue
            if not isinstance(theirs, dict) or key not in theirs:
                unknown.append(path)
                continue
            if path in free_form:
                continue
            if isinstance(value, dict):
                walk(value, theirs[key], path + ".")

    walk(values, stored(chart, version, "yaml"), "")
    return unknown


def variant_of(chart):
    return dict((chart_, variant) for variant, chart_ in RELEASES)[chart]


def pinned(chart):
    """The chart version the first stack (or the openbao variant) pins: the stored files the self-tests use."""
    return release(harness.STACKS[0], variant_of(chart), chart)["version"]


def release(stack, variant, chart):
    releases = platform(stack, variant).of_type(RELEASE)
    found = [res for res in releases if res.inputs["chart"] == chart]
    assert len(found) == 1, (stack, variant, chart, [res.inputs["chart"] for res in releases])
    return unwrap(found[0].inputs)


CASES = [pytest.param(stack, variant, chart, id="%s-%s-%s" % (stack, variant, chart))
         for stack in harness.STACKS for variant, chart in RELEASES]


@pytest.mark.parametrize("stack,variant,chart", CASES)
def test_release_is_the_stored_chart(stack, variant, chart):
    inputs = release(stack, variant, chart)
    assert inputs["repositoryOpts"]["repo"] == CHART_REPOS[chart]
    stored(chart, inputs["version"], "schema.json")
    stored(chart, inputs["version"], "yaml")


@pytest.mark.parametrize("stack,variant,chart", CASES)
def test_values_pass_the_chart_schema(stack, variant, chart):
    inputs = release(stack, variant, chart)
    assert schema_errors(chart, inputs["version"], inputs["values"]) == []


@pytest.mark.parametrize("stack,variant,chart", CASES)
def test_every_key_exists_in_the_chart(stack, variant, chart):
    inputs = release(stack, variant, chart)
    unknown = unknown_keys(chart, inputs["version"], inputs["values"])
    pending = PENDING_FIXES[chart]
    assert [path for path in unknown if path not in pending] == [], (
        "keys the chart %s %s does not have (a typo, or a key the chart renamed or dropped)" % (chart, inputs["version"]))
    assert [path for path in pending if path not in unknown] == [], "fixed: remove from PENDING_FIXES"


# ---- the stored files and the checks themselves -------------------------------------------------------------

def stored_files():
    return sorted(name for name in os.listdir(CHART_DIR) if name != "README.md")


HEADER = re.compile(r"\A# yamllint disable-file\n# \(upstream values\.yaml kept verbatim below this header[^\n]*\n"
                    r"# Source: https://github\.com/[^\n]+\n# Path: [^\n]+\n# Version: chart [^\n]+\n")
# (file, line of the upstream file, ASCII text stored, upstream text): Unicode quotes ansible-test's
# no-smart-quotes sanity test refuses; see the README.
QUOTES_REPLACED = (
    ("external-secrets-2.9.0.values.yaml", 597, "certificate's expiry", "certificate\u2019s expiry"),
)


def upstream_bytes(name):
    """The stored file as upstream has it: the header removed and the replaced quotes put back."""
    with open(os.path.join(CHART_DIR, name), encoding="utf-8") as handle:
        text = handle.read()
    if name.endswith(".yaml"):
        header = HEADER.match(text)
        assert header, "%s: the five-line header is missing or changed (see the README)" % name
        lines = text[header.end():].split("\n")
        for file_name, line, ascii_text, upstream_text in QUOTES_REPLACED:
            if file_name == name:
                assert ascii_text in lines[line - 1], (name, line, lines[line - 1])
                lines[line - 1] = lines[line - 1].replace(ascii_text, upstream_text)
        text = "\n".join(lines)
    return text.encode("utf-8")


def test_stored_files_are_upstream():
    """Every stored file is in the README's table, and is upstream's (sha256 in the README) but for the header
    and the replaced quotes."""
    with open(os.path.join(CHART_DIR, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    hashes = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
    assert sorted(hashes) == stored_files()
    for name in stored_files():
        assert "| `%s` |" % name in readme, "%s is not in the README's table" % name
        assert hashlib.sha256(upstream_bytes(name)).hexdigest() == hashes[name], "%s differs from upstream" % name


@pytest.mark.parametrize("chart,draft", [
    ("vault", Draft7Validator),  # "https://json-schema.org/draft-07/schema#"
    ("openbao", Draft202012Validator),  # "http://json-schema.org/schema#": the latest draft
    ("external-secrets", Draft202012Validator),  # "https://json-schema.org/draft/2020-12/schema"
])
def test_schema_draft_and_defaults(chart, draft):
    """Each schema is read with the draft Helm reads it with, is itself valid, and accepts the chart defaults."""
    version = pinned(chart)
    schema = stored(chart, version, "schema.json")
    assert validator_class(schema) is draft
    draft.check_schema(schema)
    assert schema_errors(chart, version, {}) == []


def has_path(tree, path):
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


@pytest.mark.parametrize("chart", sorted(FREE_FORM))
def test_exemptions_are_what_they_claim(chart):
    """A free-form path is a real key of the chart (else its exemption would hide a typo of the key itself);
    a template-only or pending key is really absent from values.yaml (else the entry is not needed)."""
    version = pinned(chart)
    defaults = stored(chart, version, "yaml")
    assert [path for path in FREE_FORM[chart] if not has_path(defaults, path)] == []
    assert [path for path in TEMPLATE_ONLY[chart] + PENDING_FIXES[chart] if has_path(defaults, path)] == []


def dict_at(path, value):
    """{"a": {"b": value}} for path "a.b"."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def test_coalesce_is_helms_merge():
    defaults = {"a": {"b": 1, "c": [1, 2], "d": "x"}, "e": {"f": 1}}
    assert coalesce(defaults, {"a": {"b": 2, "c": [3], "d": None}, "g": 1}) == {
        "a": {"b": 2, "c": [3]}, "e": {"f": 1}, "g": 1}
    assert defaults == {"a": {"b": 1, "c": [1, 2], "d": "x"}, "e": {"f": 1}}


@pytest.mark.parametrize("chart,path", [
    ("vault", "server.ha.replicas"),
    ("openbao", "server.ha.replicas"),
    ("external-secrets", "replicaCount"),
    ("external-secrets", "webhook.replicaCount"),
])
def test_a_wrong_type_fails_the_schema(chart, path):
    inputs = release(harness.STACKS[0], variant_of(chart), chart)
    release_values, version = inputs["values"], inputs["version"]
    wrong = coalesce(release_values, dict_at(path, "three"))
    errors = schema_errors(chart, version, wrong)
    assert len(errors) == 1 and errors[0].startswith(path + ": 'three' is not of type 'integer'"), errors


@pytest.mark.parametrize("chart,path", [
    ("vault", "server.haa"),
    ("vault", "server.ha.raft.setNodeID"),
    ("vault", "server.serviceAccount.anotations"),
    ("openbao", "server.haa"),
    ("openbao", "fullNameOverride"),
    ("external-secrets", "webhook.replicas"),
])
def test_an_unknown_key_passes_the_schema_but_not_the_key_check(chart, path):
    inputs = release(harness.STACKS[0], variant_of(chart), chart)
    release_values, version = inputs["values"], inputs["version"]
    typo = coalesce(release_values, dict_at(path, {"enabled": True}))
    assert schema_errors(chart, version, typo) == []  # what Helm would accept
    assert path in unknown_keys(chart, version, typo)


def test_keys_below_free_form_maps_are_not_reported():
    values = {"server": {"extraEnvironmentVars": {"ANY_NAME": "1"},
                         "serviceAccount": {"annotations": {"example.com/any": "1"}},
                         "affinity": {"nodeAffinity": {}}}}
    assert unknown_keys("vault", pinned("vault"), values) == []
