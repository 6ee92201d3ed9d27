"""What configure.yml leaves in a real OpenBao equals what pulumi/vault registers, object by object.

configure.yml runs for every environment (``vault_data.environments``) on the real 3-node OpenBao cluster, with
Kubernetes auth against the local TokenReview endpoint, as test_configure_seed_playbooks and
test_delivery_isolation run it. The test then READS BACK what the server holds -- password policies, ACL policies,
secrets engines with their KV v2 config, auth methods with their Kubernetes config and every role of the mount,
audit devices -- through ``vault_readback.read_vault_objects`` (the ``{(kind, id): attributes}`` shape of
``vault_objects``) and compares it with what pulumi/vault registers under mocks for the same environment
(``runs.vault_project(env, "openbao")``: the local cluster is OpenBao, whose audit devices live in the server
configuration, so neither applier creates one through the API). No hand-written mirror of roles/configure is
involved: one side is the server, the other the program.

A shared server holds other tests' objects too, so the read-back is scoped per environment: the names the data
declares for it, plus any object whose name carries the environment as a word (``kv-dev``, ``dev-app-x``) so that a
stray object nobody declared still shows up. Roles are read in full for every Kubernetes mount in scope.

The session cluster is shared, except when test_configure_seed_playbooks.py is scheduled later in the same session
(it needs a cluster configure.yml has not touched yet): then this module starts its own.
"""

import json
import os
import re
import sys

import hvac.exceptions
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from ansible_collections.heracles.secrets.plugins.modules.vault_auth_kubernetes import (
    jwt_fingerprint, split_description)
from heracles_playbook import recap
from heracles_testlib import ROOT

for extra in (os.path.join(ROOT, "tests", "pulumi"), os.path.join(ROOT, "pulumi")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

# pylint: disable=wrong-import-position
import harness  # noqa: E402
import runs  # noqa: E402
from heracles_pulumi.vault_objects import KINDS, pulumi_objects  # noqa: E402
from heracles_pulumi.vault_readback import object_differences, read_vault_objects  # noqa: E402

pytestmark = pytest.mark.slow
DATA = os.path.join(ROOT, "vault")
ENVS = vault_data.environments(DATA)
# pulumi/vault as it would configure this cluster: OpenBao (audit devices come from the server configuration).
VARIANT = "openbao"
# Kinds neither side has here, with the reason; every other kind of vault_objects.KINDS must be compared.
ABSENT_KINDS = {
    "audit": "OpenBao refuses API-created audit devices: the server configuration declares them (pulumi/platform's "
             "server HCL, local_cluster's config.hcl), so pulumi/vault's openbao variant registers none and "
             "configure.yml runs without configure_audit_file_path; test_audit_devices_are_the_server_configs_only "
             "checks that the server holds no other",
}
# Kinds the pulumi side registers but configure.yml configures on this cluster only with a database to reach: the
# local default has none (configure.yml says so and skips them), so they are compared in
# test_database_credentials.py::test_what_configure_leaves_in_the_database_engine_is_what_pulumi_registers, against a
# real PostgreSQL.
ELSEWHERE_KINDS = {
    "database_connection": "needs a reachable database and its admin credential (configure_database_admin)",
    "database_role": "a role is only written for a configured connection",
}
# Attributes left out of the comparison on BOTH sides, with the reason. Nothing else is left out.
EXCLUDED = {
    ("kubernetes_config", "kubernetes_host"):
        "which Kubernetes API reviews the tokens is a fact of the deployment: the stack's is pulumi/platform's "
        "kubernetesHost output, this cluster's the local TokenReview endpoint configure.yml was given (checked on "
        "its own in test_configure_leaves_what_pulumi_registers); the config object itself is still compared",
}
# Normalised before comparing (only the read-back carries it), with the reason; the raw difference is pinned by
# test_the_reviewer_jwt_fingerprint_is_the_only_raw_difference_in_descriptions.
NORMALISED = {
    ("auth", "description"):
        "vault_auth_kubernetes appends '[heracles reviewer-jwt sha256:<16 hex>]' to the mount description when it "
        "writes a reviewer JWT; this cluster runs outside Kubernetes and needs one, pulumi/vault configures Vault "
        "inside the cluster (its own service account reviews), registers no JWT and so no marker",
}
# Not in the compared shape at all (vault_objects maps neither side's value): Kubernetes config CA, reviewer JWT,
# disable_local_ca_jwt, issuer (pulumi/vault sets none of them: Vault in the cluster reads its pod's); role
# alias_name_source, token_type, token_period, token_bound_cidrs, token_num_uses, token_explicit_max_ttl (neither
# applier sets them); KV v2 delete_version_after, metadata_cas_required; mount lease TTLs.


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def configured(configured_cluster):
    """configure.yml (and seed.yml) for every declared environment: tests/integration/conftest.py."""
    return configured_cluster


# ---------------------------------------------------------------------------------------------------- both sides
def registered(env):
    """What pulumi/vault registers for ``env`` (under mocks, cached per session by runs)."""
    run = runs.vault_project(env, VARIANT)
    return dict((key, attributes) for key, attributes in pulumi_objects(
        [(res.type, harness.unwrap(res.inputs)) for res in run.resources if res.custom]).items()
        if key[0] not in ELSEWHERE_KINDS)


def vault_get(cluster):
    """``get(path)`` for read_vault_objects: the ``data`` of GET /v1/<path> on the active node, None for 404."""
    client = cluster.hvac()

    def get(path):
        try:
            body = client.adapter.get("/v1/" + path)
        except hvac.exceptions.InvalidPath:
            return None
        return body.get("data") if isinstance(body, dict) else None
    return get


def environment_scope(env, server_audit=()):
    """Which read-back objects belong to ``env``: the names its data declares, and any name with ``env`` as a word;
    audit devices (one table for the whole server) except those the server configuration declares (``server_audit``:
    no applier made them, see ABSENT_KINDS)."""
    desired = vault_data.load(DATA, [env])
    declared = {"password_policy": set(desired["password_policies"]), "acl_policy": set(desired["policies"]),
                "mount": {mount["path"] for mount in desired["mounts"]},
                "auth": {auth["path"] for auth in desired["auth"]}}

    def in_scope(kind, ident):
        if kind == "audit":
            return ident not in server_audit
        return ident in declared.get(kind, ()) or env in re.split(r"[-_/]", ident)
    return in_scope


def read_back(cluster, env):
    return read_vault_objects(vault_get(cluster), environment_scope(env, server_declared_audit(cluster)))


def comparable(objects, normalise=True):
    """``objects`` without the EXCLUDED attributes (and, with ``normalise``, the NORMALISED form)."""
    out = {}
    for (kind, ident), attributes in objects.items():
        attributes = dict((name, value) for name, value in attributes.items() if (kind, name) not in EXCLUDED)
        if normalise and (kind, "description") in NORMALISED:
            attributes["description"] = split_description(attributes["description"])[0]
        out[(kind, ident)] = attributes
    return out


def server_declared_audit(cluster):
    """``{path: type}`` of the ``audit "<type>" "<path>"`` blocks in every node's config.hcl (they agree)."""
    declared = []
    for node in cluster.lc.nodes:
        with open(node.config) as handle:
            text = handle.read()
        declared.append(dict((path, kind) for kind, path in re.findall(r'(?m)^audit\s+"([^"]+)"\s+"([^"]+)"', text)))
    assert all(blocks == declared[0] for blocks in declared), declared
    return declared[0]


# ---------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("env", ENVS)
def test_configure_leaves_what_pulumi_registers(configured, env):
    pulumi_side = registered(env)
    real = read_back(configured["cluster"], env)
    assert object_differences(comparable(pulumi_side), comparable(real)) == []
    # not vacuous: every kind but the documented absent ones, on both sides, and more than a handful of objects
    assert {key[0] for key in real} == {key[0] for key in pulumi_side} == set(KINDS) - set(ABSENT_KINDS) - set(
        ELSEWHERE_KINDS)
    assert len(real) >= 15
    # the excluded host: configure.yml left the Kubernetes API it was given, pulumi/vault the platform's output
    hosts = {attributes["kubernetes_host"] for (kind, _id), attributes in real.items() if kind == "kubernetes_config"}
    assert hosts == {configured["kubernetes"]["kubernetes_host"]}
    platform_host = runs.platform(env).outputs["kubernetesHost"]
    assert {a["kubernetes_host"] for (kind, _id), a in pulumi_side.items() if kind == "kubernetes_config"} == {
        platform_host}


def test_the_reviewer_jwt_fingerprint_is_the_only_raw_difference_in_descriptions(configured):
    """Unnormalised, each auth mount's description differs by exactly the marker of the JWT configure.yml wrote."""
    with open(configured["kubernetes"]["token_reviewer_jwt_file"]) as handle:
        marker = " [heracles reviewer-jwt %s]" % jwt_fingerprint(handle.read())
    for env in ENVS:
        pulumi_side = comparable(registered(env))
        differences = object_differences(pulumi_side, comparable(read_back(configured["cluster"], env),
                                                                 normalise=False))
        auth = sorted(key for key in pulumi_side if key[0] == "auth")
        assert auth and differences == [
            (key, "description", pulumi_side[key]["description"], pulumi_side[key]["description"] + marker)
            for key in auth]


def test_audit_devices_are_the_server_configs_only(configured):
    """The server's audit table holds exactly what its configuration declares: configure.yml added none."""
    declared = server_declared_audit(configured["cluster"])
    assert declared, "local_cluster declares no audit device: the audit exclusion would be blind"
    real = read_vault_objects(vault_get(configured["cluster"]), lambda kind, _ident: kind == "audit")
    assert dict((ident, attributes["type"]) for (_kind, ident), attributes in real.items()) == declared
    for env in ENVS:
        assert not [key for key in registered(env) if key[0] in ABSENT_KINDS]


def test_drift_in_vault_is_reported_and_configure_repairs_it(configured):
    """Break it behind both appliers' backs: halve one role's token_ttl and add a role nobody declared. The comparison
    names exactly those two; configure.yml for that environment repairs both with one change (exclusive roles), after
    which the comparison is clean again. The finally block puts the role back even when configure.yml did not."""
    cluster, env = configured["cluster"], ENVS[0]
    expected = comparable(registered(env))
    key = sorted(k for k, attributes in expected.items() if k[0] == "kubernetes_role" and attributes["token_ttl"])[0]
    before = expected[key]["token_ttl"]
    drifted = before // 2
    mount, role = key[1].split("/", 1)
    path = "/v1/auth/%s/role/%s" % (mount, role)
    stray = "/v1/auth/%s/role/heracles-stray" % mount
    root = cluster.hvac()
    try:
        root.adapter.post(path, json={"token_ttl": drifted})
        root.adapter.post(stray, json={"bound_service_account_names": ["stray"],
                                       "bound_service_account_namespaces": ["stray"], "token_policies": ["default"]})
        assert object_differences(expected, comparable(read_back(cluster, env))) == sorted([
            (key, "token_ttl", before, drifted),
            (("kubernetes_role", "%s/heracles-stray" % mount), None, None, {
                "bound_service_account_names": ["stray"], "bound_service_account_namespaces": ["stray"],
                "policies": ["default"], "audience": None, "token_ttl": None, "token_max_ttl": None,
                "token_no_default_policy": False})], key=lambda difference: difference[0])
        proc = configured["runner"].run("configure.yml", "-e", json.dumps({"configure_environments": [env]}))
        assert proc.returncode == 0 and recap(proc)["changed"] == 1, proc.stdout[-3000:]
        assert object_differences(expected, comparable(read_back(cluster, env))) == []
    finally:
        if root.adapter.get(path)["data"]["token_ttl"] != before:
            root.adapter.post(path, json={"token_ttl": before})
        root.adapter.delete(stray)
