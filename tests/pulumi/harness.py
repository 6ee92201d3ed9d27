"""Run a Pulumi program of this repository under ``pulumi.runtime.set_mocks``, one stack at a time.

No Pulumi CLI, no provider plugin, no cloud: the engine is the SDK's mock monitor. What the CLI would do
before starting a program is done here from the same files: read ``Pulumi.yaml`` (its typed config schema,
defaults applied) and ``Pulumi.<stack>.yaml``, refuse undeclared keys, wrong types and plaintext values
for keys declared ``secret``, then hand the config to the program as strings with the secret keys marked.
"""

import contextvars
import json
import os
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import pulumi
import pulumi.runtime
import yaml
from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _sync_await

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PULUMI_DIR = os.path.join(REPO_ROOT, "pulumi")
# One stack per declared environment (vault/environments/<env>.yml); test_pulumi_project_files checks the files.
STACKS = tuple(sorted(name[:-4] for name in os.listdir(os.path.join(REPO_ROOT, "vault", "environments"))
                      if name.endswith(".yml")))
# The organization a Pulumi Cloud login would give (stack references are <organization>/<project>/<stack>).
ORGANIZATION = "organization"
SECRET_SIG = rpc._special_secret_sig  # pylint: disable=protected-access
SIG_KEY = rpc._special_sig_key  # pylint: disable=protected-access

if PULUMI_DIR not in sys.path:
    sys.path.insert(0, PULUMI_DIR)


class StackConfigError(ValueError):
    pass


def project_dir(project):
    return os.path.join(PULUMI_DIR, project)


def read_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


_INVENTORIES = {}


def inventory(environment):
    """The variables of ``inventories/<environment>`` as Ansible renders them (what the Ansible side deploys with).

    Rendered by Ansible itself (``ansible -m debug``), so values the inventory reads from the deployment facts
    (``heracles.secrets.vault_deployment``) are compared as a playbook would see them. One run per environment.
    """
    if environment not in _INVENTORIES:
        raw = read_yaml(os.path.join(REPO_ROOT, "inventories", environment, "group_vars", "all.yml"))
        names = sorted(raw)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, ".collections"),
                   ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"))
        expr = "{{ dict(%s) | to_json }}" % ", ".join("%s=%s" % (name, name) for name in names)
        with tempfile.TemporaryDirectory() as tmp:
            dest = os.path.join(tmp, "vars.json")
            proc = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i",
                 os.path.join(REPO_ROOT, "inventories", environment), "-m", "ansible.builtin.copy", "-a",
                 json.dumps({"content": expr, "dest": dest, "mode": "0600"})],
                capture_output=True, text=True, env=env, timeout=120, check=False)
            if proc.returncode != 0:
                raise AssertionError("rendering inventories/%s failed: %s" % (environment, proc.stdout[-2000:]))
            with open(dest) as handle:
                _INVENTORIES[environment] = json.load(handle)
    return _INVENTORIES[environment]


def project_schema(project):
    """``(project name, {full key: declaration})`` from the project's Pulumi.yaml."""
    data = read_yaml(os.path.join(project_dir(project), "Pulumi.yaml"))
    name = data["name"]
    schema = {}
    for key, decl in (data.get("config") or {}).items():
        full = key if ":" in key else "%s:%s" % (name, key)
        schema[full] = decl
    return name, schema


def _check_type(key, decl, value):
    kind = decl.get("type")
    checks = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool),
              "array": lambda v: isinstance(v, list) and all(_item_ok(decl.get("items", {}), item) for item in v)}
    if kind not in checks:
        raise StackConfigError("%s: unsupported schema type %r" % (key, kind))
    if not checks[kind](value):
        raise StackConfigError("%s: %r is not of the declared type %s" % (key, value, kind))


def _item_ok(items, value):
    return {"string": isinstance(value, str), "integer": isinstance(value, int), "boolean": isinstance(value, bool)
            }.get(items.get("type"), False)


def _as_config_string(value):
    if isinstance(value, str):
        return value
    return json.dumps(value)


def stack_config(project, stack, overrides=None, secrets=None):
    """The config map and secret keys the CLI would give ``project``'s program for ``stack``.

    ``secrets`` stands for ``pulumi config set --secret`` values (the stack files hold ``secure:`` only).
    """
    name, schema = project_schema(project)
    path = os.path.join(project_dir(project), "Pulumi.%s.yaml" % stack)
    values = dict(read_yaml(path).get("config") or {})
    secret_keys = []
    for key, value in list(values.items()):
        if isinstance(value, dict) and set(value) == {"secure"}:
            # ciphertext only the stack's secrets provider can open: the program gets a stand-in, marked secret
            if not schema.get(key, {}).get("secret"):
                raise StackConfigError("%s holds a secure: value but Pulumi.yaml does not declare it secret" % key)
            values[key] = "mock-secure-value-of-%s" % key
            secret_keys.append(key)
    for key, value in (overrides or {}).items():
        values[key if ":" in key else "%s:%s" % (name, key)] = value
    for key, value in (secrets or {}).items():
        full = key if ":" in key else "%s:%s" % (name, key)
        values[full] = value
        secret_keys.append(full)
    config = {}
    for key, value in values.items():
        namespace = key.split(":", 1)[0]
        if namespace == name:
            if key not in schema:
                raise StackConfigError("%s sets %s, which Pulumi.yaml does not declare" % (path, key))
            decl = schema[key]
            if decl.get("secret") and key not in secret_keys:
                raise StackConfigError("%s is declared secret: only `secure:` values may be stored for it" % key)
            _check_type(key, decl, value)
        config[key] = _as_config_string(value)
    for key, decl in schema.items():
        if key in config:
            continue
        if "default" in decl:
            config[key] = _as_config_string(decl["default"])
        else:
            # Pulumi's own rule, with no exception for secret keys (pkg/workspace/config.go)
            raise StackConfigError("%s: Stack '%s' is missing configuration value '%s' (required key %s, no default)"
                                   % (path, stack, key.split(":", 1)[1], key))
    return name, config, secret_keys


@dataclass
class Registered:
    """One resource the program registered: type token, logical name, inputs as the engine saw them."""

    type: str
    name: str
    inputs: dict
    provider: str = ""
    custom: bool = True
    import_id: str = ""
    dependencies: tuple = ()  # URNs of what it waits for (depends_on and input dependencies), as the engine sees them


@dataclass
class Run:
    project: str
    stack: str
    resources: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def of_type(self, token):
        return [res for res in self.resources if res.type == token]

    def one(self, token, name=None):
        found = [res for res in self.of_type(token) if name is None or res.name == name]
        if len(found) != 1:
            raise AssertionError("expected one %s%s, found %d: %s" % (
                token, " named %s" % name if name else "", len(found), [res.name for res in found]))
        return found[0]


def unwrap(value):
    """Inputs with secret markers removed (for reading values in assertions)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def plaintext_strings(value, path=""):
    """Every string in ``value`` that is *not* inside a Pulumi secret, with its path."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return
        for key, item in value.items():
            yield from plaintext_strings(item, "%s.%s" % (path, key) if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from plaintext_strings(item, "%s[%d]" % (path, index))
    elif isinstance(value, str):
        yield path, value


def _computed(args, account):
    """Provider-computed outputs the programs read (ARNs, ids, the EKS endpoint and issuer)."""
    inputs = args.inputs
    token, name = args.typ, args.name
    arn = "arn:aws:mock:%s:%s" % (token.split(":")[1].split("/")[0], name)
    extra = {}
    if token == "aws:kms/key:Key":
        extra = {"arn": "arn:aws:kms:ap-northeast-1:%s:key/%s" % (account, name), "keyId": name}
    elif token == "aws:iam/role:Role":
        extra = {"arn": "arn:aws:iam::%s:role/%s" % (account, inputs.get("name", name))}
    elif token == "aws:s3/bucket:Bucket":
        extra = {"arn": "arn:aws:s3:::%s" % inputs["bucket"], "bucket": inputs["bucket"]}
    elif token == "aws:eks/cluster:Cluster":
        extra = {"arn": arn, "endpoint": "https://%s.eks.example" % name,
                 "certificateAuthority": {"data": "bW9jay1jYQ=="},
                 "identities": [{"oidcs": [{"issuer": "https://oidc.eks.example/id/%s" % name}]}]}
    elif token == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        extra = {"status": {"loadBalancer": {"ingress": [{"hostname": "internal-%s.elb.example" % name}]}}}
    elif token in ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:secretsmanager/secret:Secret"):
        extra = {"arn": arn}
    return dict(inputs, **extra)


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's dependencies (what the engine orders on)."""

    def RegisterResource(self, request):  # noqa: N802  (the gRPC method name)
        response = super().RegisterResource(request)
        deps = set(request.dependencies)
        for prop in request.propertyDependencies.values():
            deps.update(prop.urns)
        self.mocks.dependencies[(request.type, request.name)] = tuple(sorted(deps))
        return response


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration (components too) and answers with plausible computed outputs.

    ``stack_outputs`` answers StackReferences (``{stack name: outputs}``, e.g. the platform run's exports);
    ``calls`` answers provider functions (``{token: function(args) -> result}``); anything else is an error.
    """

    def __init__(self, account, stack_outputs=None, calls=None):
        self.resources = []
        self.dependencies = {}
        self.calls = []
        self.account = account
        self.stack_outputs = stack_outputs or {}
        self.call_answers = calls or {}

    def new_resource(self, args):
        self.resources.append(Registered(args.typ, args.name, args.inputs, custom=args.custom, provider=args.provider,
                                         import_id=args.resource_id or ""))
        if args.typ == "pulumi:pulumi:StackReference":
            stack = args.inputs.get("name", args.name)
            if stack not in self.stack_outputs:
                raise AssertionError("the program references stack %s, which the test did not provide" % stack)
            return stack, {"name": stack, "outputs": self.stack_outputs[stack], "secretOutputNames": []}
        return args.name + "-id", _computed(args, self.account)

    def call(self, args):
        self.calls.append((args.token, dict(args.args)))
        if args.token in self.call_answers:
            return self.call_answers[args.token](args.args)
        raise AssertionError("the program made an unexpected provider call: %s" % args.token)


def _resolve(value):
    if isinstance(value, pulumi.Output):
        return _resolve(_sync_await(value.future()))
    if isinstance(value, dict):
        return {key: _resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item) for item in value]
    return value


def run_program(project, stack, overrides=None, secrets=None, stack_outputs=None, calls=None, environ=None):
    """Run ``pulumi/<project>/__main__.py`` for ``stack`` under mocks; return what it registered and exported.

    ``environ``: environment variables set for the run only (e.g. VAULT_TOKEN, which a user exports).
    """
    name, config, secret_keys = stack_config(project, stack, overrides, secrets)
    saved = {key: os.environ.get(key) for key in (environ or {})}
    os.environ.update(environ or {})
    try:
        return contextvars.copy_context().run(_run, project, name, stack, config, secret_keys,
                                              RecordingMocks(config.get("%s:awsAccountId" % name, "000000000000"),
                                                             stack_outputs, calls))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(project, name, stack, config, secret_keys, mocks):
    settings.set_root_resource(None)
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(mocks, project=name, stack=stack, preview=False, organization=ORGANIZATION,
                             monitor=RecordingMonitor(mocks))
    runpy.run_path(os.path.join(project_dir(project), "__main__.py"), run_name="__main__")
    _sync_await(pulumi.runtime.stack.wait_for_rpcs())
    root = settings.get_root_resource()
    outputs = {key: _resolve(value) for key, value in root.outputs.items()}
    for res in mocks.resources:
        res.dependencies = mocks.dependencies.get((res.type, res.name), ())
    return Run(project=project, stack=stack, resources=list(mocks.resources), outputs=outputs, config=config,
               calls=list(mocks.calls))
