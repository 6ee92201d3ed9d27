"""The heracles-secrets policy pack (pulumi/policy), served the way the Pulumi CLI serves it, against what the
programs register.

No Pulumi CLI runs here, so the tests play the engine's part. The pack runs in a process of its own, started as the
CLI's Python analyzer shim starts it (``python -u -m pulumi.policy <engine> <pack dir>``: the directory's
``__main__.py`` builds the real ``PolicyPack``, which serves the Analyzer gRPC service on the port it prints). Each
registration the mocks recorded goes to it as an ``AnalyzeRequest`` (the resource's inputs as a protobuf Struct,
secrets still marked, numbers as floats: what ``pulumi preview`` sends), each whole run as an ``AnalyzeStackRequest``
(props: the inputs plus the id the mock monitor gave the resource). So the policies are checked through the same
deserialisation, proxies and reporting as at a real preview.

The broken resources are real registrations copied from a run and changed in one place.
"""

import copy
import dataclasses
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

import harness
import runs

POLICY_DIR = os.path.join(harness.PULUMI_DIR, "policy")
if POLICY_DIR not in sys.path:
    sys.path.insert(0, POLICY_DIR)
import heracles_policies  # noqa: E402  pylint: disable=wrong-import-position

PLATFORM_VARIANTS = ("stack", "self-managed", "adopt", "openbao", "k8s-join")
VAULT_VARIANTS = ("stack", "openbao")
RESOURCE_POLICIES = frozenset(heracles_policies.resource_checks(()))
STACK_POLICIES = frozenset(heracles_policies.STACK_CHECKS)
ALL_POLICIES = RESOURCE_POLICIES | STACK_POLICIES
TEST_ALLOWLIST = os.path.join(harness.REPO_ROOT, "tests", "data", "policy-allowlist.yml")
S3_POLICY = "s3-buckets-encrypted-versioned-private"
# pulumi_policy's sentinel for a value the engine cannot know during preview (pulumi_policy.proxy)
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _struct(props):
    return json_format.ParseDict(props, struct_pb2.Struct())


def urn(project, stack, res):
    return "urn:pulumi:%s::%s::%s::%s" % (stack, project, res.type, res.name)


def stack_props(res):
    """A resource's props as AnalyzeStack sees them (outputs): its inputs and the id the mock monitor returned."""
    return dict(res.inputs, id=res.name + "-id")


@dataclasses.dataclass
class Verdict:
    violations: list  # [(policy, resource or urn, enforcement level, message)]
    applied: set  # policies that had something to check


class Pack:
    """The policy pack process and an Analyzer client: the engine's side of ``--policy-pack``."""

    def __init__(self):
        self._stderr = tempfile.TemporaryFile()
        env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", POLICY_DIR],
            cwd=harness.project_dir("platform"), stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=60)
        port = self.process.stdout.readline().decode().strip() if ready else ""
        if not port.isdigit():
            self.close()
            self._stderr.seek(0)
            raise AssertionError("the policy pack did not start: %r\n%s" % (port, self._stderr.read().decode()[-3000:]))
        self.channel = grpc.insecure_channel("127.0.0.1:%s" % port)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def close(self):
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._stderr.close()

    def info(self):
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def analyze(self, res, project="heracles-platform", stack="dev", props=None):
        return self.stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=res.type, name=res.name, urn=urn(project, stack, res),
            properties=_struct(res.inputs if props is None else props)))

    def analyze_stack(self, resources, project="heracles-platform", stack="dev"):
        return self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(type=res.type, name=res.name, urn=urn(project, stack, res),
                                          properties=_struct(stack_props(res))) for res in resources]))

    def judge(self, resources, project="heracles-platform", stack="dev"):
        """Each resource through Analyze, all through AnalyzeStack: the violations and the policies that applied."""
        violations, applied = [], set()
        for res in resources:
            response = self.analyze(res, project, stack)
            violations.extend((d.policyName, res.name, d.enforcementLevel, d.message) for d in response.diagnostics)
            applied |= RESOURCE_POLICIES - {item.policy_name for item in response.not_applicable}
        response = self.analyze_stack(resources, project, stack)
        violations.extend((d.policyName, d.urn, d.enforcementLevel, d.message) for d in response.diagnostics)
        applied |= STACK_POLICIES - {item.policy_name for item in response.not_applicable}
        return Verdict(violations, applied)


@pytest.fixture(scope="module")
def pack():
    served = Pack()
    yield served
    served.close()


# --- the pack as the CLI loads it -----------------------------------------------------------------------------------
def test_pack_serves_seven_mandatory_policies_under_its_name(pack):
    info = pack.info()
    assert info.name == "heracles-secrets"
    policies = {policy.name: policy for policy in info.policies}
    assert set(policies) == ALL_POLICIES and len(policies) == len(info.policies) == 7
    assert {policy.enforcementLevel for policy in info.policies} == {analyzer_pb2.MANDATORY}
    assert {name for name, policy in policies.items() if policy.policy_type == analyzer_pb2.POLICY_TYPE_STACK} == \
        STACK_POLICIES
    assert all(policy.description for policy in info.policies)


def test_policy_project_file_and_pins():
    project = harness.read_yaml(os.path.join(POLICY_DIR, "PulumiPolicy.yaml"))
    assert project["runtime"]["name"] == "python" and project["version"]
    # the same interpreter (virtualenv) as the programs it checks
    platform = harness.read_yaml(os.path.join(harness.project_dir("platform"), "Pulumi.yaml"))
    assert project["runtime"] == platform["runtime"]

    def pins(path):
        with open(path) as handle:
            return dict(line.strip().split("==") for line in handle if "==" in line and not line.startswith("#"))
    pack_pins = pins(os.path.join(POLICY_DIR, "requirements.txt"))
    pulumi_pins = pins(os.path.join(harness.REPO_ROOT, "requirements-pulumi.txt"))
    assert set(pack_pins) == {"pulumi", "pulumi-policy", "PyYAML"}
    assert {name: pulumi_pins.get(name) for name in pack_pins} == pack_pins


def test_a_value_unknown_during_preview_is_advisory_not_a_crash(pack):
    key = runs.platform("dev").of_type("aws:kms/key:Key")[0]
    props = dict(key.inputs, policy=UNKNOWN_STRING)
    response = pack.analyze(key, props=props)
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("no-wildcard-iam", analyzer_pb2.ADVISORY)]
    assert "can't be known during preview" in response.diagnostics[0].message


# --- (a) every stack and variant passes every policy -----------------------------------------------------------------
@pytest.mark.parametrize("variant", PLATFORM_VARIANTS)
def test_every_platform_registration_passes_every_policy(pack, stack, variant):
    run = runs.platform(stack, variant)
    verdict = pack.judge(run.resources, "heracles-platform", stack)
    assert verdict.violations == []
    # not vacuous: every invariant found something of its kind to check in the platform
    assert verdict.applied == ALL_POLICIES


@pytest.mark.parametrize("variant", VAULT_VARIANTS)
def test_every_vault_project_registration_passes_every_policy(pack, stack, variant):
    run = runs.vault_project(stack, variant)
    verdict = pack.judge(run.resources, "heracles-vault", stack)
    assert verdict.violations == []
    assert verdict.applied == {"vault-tls"}  # the Vault provider's address


# --- (b) deliberately broken registrations are caught ----------------------------------------------------------------
def _pick(token, where=None):
    """A picker of the first registration of ``token`` (that ``where`` accepts) in a run."""
    def pick(run):
        found = [res for res in run.of_type(token) if where is None or where(res)]
        assert found, (token, sorted({res.type for res in run.resources}))
        return found[0]
    return pick


def _list(value):
    return value if isinstance(value, list) else [value]


def _changed(res, edit):
    inputs = copy.deepcopy(res.inputs)
    edit(inputs)
    return dataclasses.replace(res, inputs=inputs)


def _allow_statements(document_text):
    return [item for item in json.loads(document_text)["Statement"] if item.get("Effect") == "Allow"]


def _grants_prefix(prefix):
    """Accepts a registration whose policy has an Allow statement with an action of ``prefix`` (``kms:``, ``s3:``)."""
    return lambda res: any(str(action).startswith(prefix) for statement in _allow_statements(res.inputs["policy"])
                           for action in _list(statement["Action"]))


def _policy_edit(edit, prefix="", field="policy"):
    """An edit of the first Allow statement (with an action of ``prefix``) of the JSON document in ``field``."""
    def apply(inputs):
        document = json.loads(inputs[field])
        statement = [item for item in document["Statement"] if item.get("Effect") == "Allow" and any(
            str(action).startswith(prefix) for action in _list(item["Action"]))][0]
        edit(statement)
        inputs[field] = json.dumps(document)
    return apply


def _append_action(action):
    return lambda statement: statement.update(Action=_list(statement["Action"]) + [action])


def _disable_listener_tls(inputs):
    raft = inputs["values"]["server"]["ha"]["raft"]
    raft["config"], count = re.subn(r"tls_disable(\s*)= false", r"tls_disable\1= 1", raft["config"])
    assert count == 1


def _as_cluster_store(inputs):
    inputs["kind"] = "ClusterSecretStore"
    del inputs["metadata"]["namespace"]
    inputs["spec"]["conditions"] = [{"namespaces": ["payments"]}]


def _other_namespace(inputs):
    inputs["spec"]["provider"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"]["namespace"] = "external-secrets"


def _irsa_string_like(inputs):
    document = json.loads(inputs["assumeRolePolicy"])
    conditions = document["Statement"][0]["Condition"]
    (sub,) = [key for key in conditions["StringEquals"] if key.endswith(":sub")]
    del conditions["StringEquals"][sub]
    conditions["StringLike"] = {sub: "system:serviceaccount:*:*"}
    inputs["assumeRolePolicy"] = json.dumps(document)


SECRET_STORE = "kubernetes:external-secrets.io/v1:SecretStore"
CLUSTER_STORE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY = "aws:kms/key:Key"
ROLE_POLICY_WITH = {prefix: _pick(ROLE_POLICY, _grants_prefix(prefix)) for prefix in ("kms:", "s3:", "secretsmanager:")}
VAULT_RELEASE = _pick(heracles_policies.HELM_RELEASE, lambda res: res.inputs["chart"] in heracles_policies.VAULT_CHARTS)
VAULT_STORE = _pick(SECRET_STORE, lambda res: "vault" in res.inputs["spec"]["provider"])
IRSA_ROLE = _pick("aws:iam/role:Role", lambda res: "Federated" in res.inputs["assumeRolePolicy"])
# (case, policy that must catch it, picker of the real registration, edit, new type or None)
BROKEN_RESOURCES = [
    ("role-policy-kms-star", "no-wildcard-iam", ROLE_POLICY_WITH["kms:"],
     _policy_edit(_append_action("kms:*"), "kms:"), None),
    ("role-policy-s3-star", "no-wildcard-iam", ROLE_POLICY_WITH["s3:"],
     _policy_edit(lambda statement: statement.update(Action=["s3:*"]), "s3:"), None),
    ("role-policy-star-action", "no-wildcard-iam", ROLE_POLICY_WITH["secretsmanager:"],
     _policy_edit(_append_action("*"), "secretsmanager:"), None),
    ("role-policy-star-resource", "no-wildcard-iam", ROLE_POLICY_WITH["kms:"],
     _policy_edit(lambda statement: statement.update(Resource="*"), "kms:"), None),
    ("key-policy-kms-star", "no-wildcard-iam", _pick(KEY), _policy_edit(_append_action("kms:*")), None),
    ("key-policy-star-principal", "no-wildcard-iam", _pick(KEY),
     _policy_edit(lambda statement: statement.update(Principal={"AWS": "*"})), None),
    ("key-rotation-off", "kms-key-rotation", _pick(KEY), lambda inputs: inputs.update(enableKeyRotation=False), None),
    ("key-deletion-window-short", "kms-key-rotation", _pick(KEY),
     lambda inputs: inputs.update(deletionWindowInDays=3.0), None),
    ("irsa-string-like-sub", "irsa-trust-pinned", IRSA_ROLE, _irsa_string_like, None),
    ("vault-tls-disable-true", "vault-tls", VAULT_RELEASE,
     lambda inputs: inputs["values"]["global"].update(tlsDisable=True), None),
    ("vault-listener-tls-disable", "vault-tls", VAULT_RELEASE, _disable_listener_tls, None),
    ("secret-store-http", "vault-tls", VAULT_STORE,
     lambda inputs: inputs["spec"]["provider"]["vault"].update(server="http://vault-active.vault.svc:8200"), None),
    ("vault-one-replica", "vault-raft-voters", VAULT_RELEASE,
     lambda inputs: inputs["values"]["server"]["ha"].update(replicas=1.0), None),
    ("cluster-store-vault-provider", "eso-stores-restricted", VAULT_STORE, _as_cluster_store, CLUSTER_STORE),
    ("cluster-store-without-conditions", "eso-stores-restricted", _pick(CLUSTER_STORE),
     lambda inputs: inputs["spec"].pop("conditions"), None),
    ("secret-store-other-namespace", "eso-stores-restricted", VAULT_STORE, _other_namespace, None),
]


@pytest.mark.parametrize("case, policy, pick, edit, new_type", BROKEN_RESOURCES,
                         ids=[case[0] for case in BROKEN_RESOURCES])
def test_a_broken_resource_is_caught_by_its_policy(pack, case, policy, pick, edit, new_type):
    original = pick(runs.platform("dev"))
    assert pack.analyze(original).diagnostics == [], case  # the real registration passes
    broken = _changed(original, edit)
    if new_type:
        broken = dataclasses.replace(broken, type=new_type)
    diagnostics = pack.analyze(broken).diagnostics
    assert {(d.policyName, d.enforcementLevel) for d in diagnostics} == {(policy, analyzer_pb2.MANDATORY)}, [
        d.message for d in diagnostics]


def _without(resources, token):
    found = [res for res in resources if res.type == token]
    assert len(found) == 1
    return [res for res in resources if res.type != token], found[0]


def _replace(resources, token, edit):
    out, changed = [], None
    for res in resources:
        if res.type == token:
            assert changed is None
            res = changed = _changed(res, edit)
        out.append(res)
    return out, changed


SSE = heracles_policies.S3_ENCRYPTION[0]
VERSIONING = heracles_policies.S3_VERSIONING[0]
PUBLIC_ACCESS_BLOCK = heracles_policies.S3_PUBLIC_ACCESS_BLOCK[0]
BUCKET = heracles_policies.S3_BUCKETS[0]


def _sse_aes256(inputs):
    inputs["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}


BROKEN_BUCKETS = [
    ("bucket-without-encryption-config", lambda resources: (_without(resources, SSE)[0], BUCKET)),
    ("bucket-without-versioning", lambda resources: (_without(resources, VERSIONING)[0], BUCKET)),
    ("bucket-without-public-access-block", lambda resources: (_without(resources, PUBLIC_ACCESS_BLOCK)[0], BUCKET)),
    ("bucket-encrypted-with-aes256", lambda resources: (_replace(resources, SSE, _sse_aes256)[0], SSE)),
    ("bucket-versioning-suspended", lambda resources: (_replace(
        resources, VERSIONING, lambda inputs: inputs["versioningConfiguration"].update(status="Suspended"))[0],
        VERSIONING)),
] + [
    ("public-access-block-%s-false" % flag, lambda resources, flag=flag: (_replace(
        resources, PUBLIC_ACCESS_BLOCK, lambda inputs: inputs.update({flag: False}))[0], PUBLIC_ACCESS_BLOCK))
    for flag in heracles_policies.PUBLIC_ACCESS_FLAGS
]


@pytest.mark.parametrize("case, breaks", BROKEN_BUCKETS, ids=[case[0] for case in BROKEN_BUCKETS])
def test_a_broken_bucket_is_caught_by_the_stack_policy(pack, case, breaks):
    resources = runs.platform("dev").resources
    assert pack.analyze_stack(resources).diagnostics == []
    broken, culprit = breaks(list(resources))
    diagnostics = pack.analyze_stack(broken).diagnostics
    assert {(d.policyName, d.enforcementLevel) for d in diagnostics} == {(S3_POLICY, analyzer_pb2.MANDATORY)}, case
    (culprit_res,) = [res for res in broken if res.type == culprit]
    assert {d.urn for d in diagnostics} == {urn("heracles-platform", "dev", culprit_res)}, case


# --- (c) the allow-list ----------------------------------------------------------------------------------------------
def _write_allowlist(tmp_path, entries):
    path = tmp_path / "allowlist.yml"
    path.write_text(yaml.safe_dump(entries))
    return str(path)


def _fixture_entry():
    return copy.deepcopy(harness.read_yaml(TEST_ALLOWLIST)[0])


BAD_ENTRIES = [
    ("no-why", lambda entry: entry.pop("why"), "missing why"),
    ("empty-why", lambda entry: entry.update(why="  "), "`why` must say"),
    ("why-not-a-sentence", lambda entry: entry.update(why="needed"), "`why` must say"),
    ("unknown-key", lambda entry: entry.update(principal="x"), "unknown principal"),
    ("type-without-documents", lambda entry: entry.update(type="aws:s3/bucket:BucketVersioning"), "no policy document"),
    ("allow-effect", lambda entry: entry.update(allow={"Effect": "Allow"}), "allow must map"),
    ("no-sid", lambda entry: entry.update(sid=[]), "sid must be"),
]


@pytest.mark.parametrize("case, edit, message", BAD_ENTRIES, ids=[case[0] for case in BAD_ENTRIES])
def test_an_allowlist_entry_without_a_reason_or_with_a_wrong_shape_is_refused(tmp_path, case, edit, message):
    entry = _fixture_entry()
    assert heracles_policies.load_allowlist(_write_allowlist(tmp_path, [entry]))  # the fixture itself loads
    edit(entry)
    with pytest.raises(heracles_policies.AllowlistError, match=re.escape(message)):
        heracles_policies.load_allowlist(_write_allowlist(tmp_path, [entry]))
    assert case


def _eso_policy_with(statement):
    """The real ESO role policy with one more statement."""
    original = ROLE_POLICY_WITH["secretsmanager:"](runs.platform("dev"))
    document = json.loads(original.inputs["policy"])
    document["Statement"].append(statement)
    return dict(original.inputs, policy=json.dumps(document))


LIST_SECRETS = {"Sid": "ListSecretsForFind", "Effect": "Allow", "Action": ["secretsmanager:ListSecrets"],
                "Resource": "*"}


def test_an_allowlisted_statement_passes_and_the_same_statement_under_another_sid_fails():
    allowlist = heracles_policies.load_allowlist(TEST_ALLOWLIST)
    check = heracles_policies.check_no_wildcards
    assert check(ROLE_POLICY, _eso_policy_with(LIST_SECRETS), allowlist) == []
    other_sid = dict(LIST_SECRETS, Sid="ListEverything")
    assert [message for message in check(ROLE_POLICY, _eso_policy_with(other_sid), allowlist)
            if "'ListEverything': Resource '*'" in message]
    # the entry allows Resource "*" only: a wildcard action in the same statement still fails
    broader = dict(LIST_SECRETS, Action=["secretsmanager:*"])
    assert [message for message in check(ROLE_POLICY, _eso_policy_with(broader), allowlist)
            if "Action 'secretsmanager:*'" in message]
    # the entry is for role policies: the same statement in a managed policy is not covered
    assert check("aws:iam/policy:Policy", _eso_policy_with(LIST_SECRETS), allowlist)
    # and the pack's own list does not carry it
    assert check(ROLE_POLICY, _eso_policy_with(LIST_SECRETS), heracles_policies.ALLOWLIST)


def test_every_entry_of_the_packs_allowlist_is_used_by_some_registration():
    """A stale entry is a wildcard waiting to be reintroduced: each listed Sid must still need its exception."""
    used = set()
    for variant in PLATFORM_VARIANTS:
        for stack in runs.STACKS:
            for res in runs.platform(stack, variant).resources:
                for dummy, document in heracles_policies.policy_documents(res.type, res.inputs):
                    for statement in heracles_policies.statements(document or {}):
                        for element, value, dummy in heracles_policies.statement_findings(statement):
                            used.add((res.type, statement.get("Sid"), element, value))
    for entry in heracles_policies.ALLOWLIST:
        for sid in entry.sids:
            for element, values in entry.allow.items():
                for value in values:
                    assert (entry.type, sid, element, value) in used, (entry.type, sid, element, value)
