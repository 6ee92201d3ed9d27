"""The heracles-secrets policy pack: the platform's security invariants as plain functions over (type, props).

Every ``check_*`` function takes a resource type token and its properties, camelCase, exactly as the Pulumi engine
hands them to a policy pack (a resource policy sees the resource's inputs, a stack policy every resource's outputs;
``pulumi_policy`` wraps them in read-only ``Mapping``/``Sequence`` proxies, numbers arrive as floats, secrets
unwrapped). It returns ``None`` when the resource is outside the invariant (the pack reports the policy "not
applicable") or the list of violations, empty when the resource complies. ``POLICIES`` wraps them for
``pulumi_policy``; ``__main__.py`` serves them. The tests call the same functions, and the pack over gRPC the way the
CLI starts it (tests/pulumi/test_policy_pack.py).

During ``pulumi preview`` a value that depends on a resource not yet created (a policy document naming a new role's
ARN) is unknown: reading it raises ``UnknownValueError``, which ``pulumi_policy`` reports as an advisory "can't run
policy during preview"; ``pulumi up`` runs the policy again before the resource is created, with the value known.

Wildcards that are right by construction (a key policy's ``"Resource": "*"`` means "this key") are listed, each with
its reason, in ``allowlist.yml`` beside this file: ``load_allowlist`` refuses an entry without one.
"""

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Tuple

import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

PACK_NAME = "heracles-secrets"
ENFORCEMENT = EnforcementLevel.MANDATORY
ALLOWLIST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "allowlist.yml")

# Where IAM-grammar policy documents live, per resource type: property paths, ``[]`` iterates a list.
POLICY_DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy", "inlinePolicies[].policy"),
    "aws:kms/key:Key": ("policy",),
    "aws:kms/keyPolicy:KeyPolicy": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:s3/bucket:Bucket": ("policy",),
    "aws:s3/bucketV2:BucketV2": ("policy",),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("policy",),
}
# The statement elements the wildcard check reads, and the ones an allow-list entry may allow a wildcard in.
ALLOWABLE_ELEMENTS = ("Action", "Resource", "Principal")
MIN_KMS_DELETION_WINDOW_DAYS = 7
MIN_VAULT_VOTERS = 3
IRSA_AUDIENCE = "sts.amazonaws.com"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
SERVICE_ACCOUNT_SUBJECT = re.compile(r"^system:serviceaccount:%s:%s$" % (_DNS_LABEL, _DNS_LABEL))

KMS_KEY = "aws:kms/key:Key"
IAM_ROLE = "aws:iam/role:Role"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
VAULT_CHARTS = ("vault", "openbao")
VAULT_PROVIDER = "pulumi:providers:vault"
ESO_STORE = re.compile(r"^kubernetes:external-secrets\.io/[^:]+:(?P<kind>SecretStore|ClusterSecretStore)$")
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
S3_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
S3_PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
SSE_KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


# --- small readers (proxies are Mapping / Sequence, not dict / list) ----------------------------------------------
def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _as_list(value):
    if value is None:
        return []
    return list(value) if _is_list(value) else [value]


def _get(value, *path):
    """``value[path[0]][path[1]]...`` or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _truthy(value):
    """How Vault and Go read a boolean setting: true, 1, t (any case)."""
    return str(value).strip().strip('"').lower() in ("true", "1", "t")


def _values_at(props, path):
    """The values at a property path such as ``inlinePolicies[].policy`` (with their concrete paths)."""
    found = [(props, "")]
    for step in path.split("."):
        many = step.endswith("[]")
        key = step[:-2] if many else step
        following = []
        for value, where in found:
            item = _get(value, key)
            if item is None:
                continue
            where = "%s.%s" % (where, key) if where else key
            if many:
                following.extend((element, "%s[%d]" % (where, index)) for index, element in enumerate(_as_list(item)))
            else:
                following.append((item, where))
        found = following
    return found


# --- the allow-list -------------------------------------------------------------------------------------------------
class AllowlistError(ValueError):
    pass


class AllowEntry(NamedTuple):
    """One reviewed exception: in statements ``sids`` of ``type``'s documents, these wildcard values are allowed."""

    type: str
    sids: Tuple[str, ...]
    allow: Mapping
    why: str

    def covers(self, resource_type, sid, element, value):
        return resource_type == self.type and sid in self.sids and value in self.allow.get(element, ())


_ENTRY_KEYS = {"type", "sid", "allow", "why"}
MIN_WHY_WORDS = 5


def _strings(value):
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else None


def load_allowlist(path=ALLOWLIST_PATH):
    """The reviewed wildcard exceptions in ``path``; an entry without a ``why`` (or with an unexpected key) is refused.

    Entry: ``type`` (a resource type with policy documents), ``sid`` (a statement Sid or a list of them),
    ``allow`` (``{Action|Resource|Principal: value or list of values}``: the wildcard values allowed there),
    ``why`` (a sentence a reviewer can check).
    """
    with open(path, encoding="utf-8") as handle:
        entries = yaml.safe_load(handle) or []
    if not isinstance(entries, list):
        raise AllowlistError("%s: expected a list of entries" % path)
    out = []
    for index, entry in enumerate(entries):
        where = "%s: entry %d" % (path, index + 1)
        if not isinstance(entry, dict):
            raise AllowlistError("%s: expected a mapping, got %r" % (where, entry))
        if set(entry) != _ENTRY_KEYS:
            missing, unknown = sorted(_ENTRY_KEYS - set(entry)), sorted(set(entry) - _ENTRY_KEYS)
            raise AllowlistError("%s: %s%s (an entry has exactly %s)" % (
                where, "missing %s" % ", ".join(missing) if missing else "",
                "%sunknown %s" % ("; " if missing else "", ", ".join(unknown)) if unknown else "", sorted(_ENTRY_KEYS)))
        why = entry["why"]
        if not isinstance(why, str) or len(why.split()) < MIN_WHY_WORDS:
            raise AllowlistError("%s: `why` must say in a sentence why the wildcard is right, got %r" % (where, why))
        if entry["type"] not in POLICY_DOCUMENTS:
            raise AllowlistError("%s: type %r holds no policy document this pack reads (%s)" % (
                where, entry["type"], ", ".join(sorted(POLICY_DOCUMENTS))))
        sids = _strings(entry["sid"])
        if not sids or not all(isinstance(sid, str) and sid for sid in sids):
            raise AllowlistError("%s: sid must be a statement Sid or a list of them" % where)
        allow = entry["allow"]
        if not isinstance(allow, dict) or not allow or set(allow) - set(ALLOWABLE_ELEMENTS):
            raise AllowlistError("%s: allow must map some of %s to wildcard values" % (where, ALLOWABLE_ELEMENTS))
        allowed = {}
        for element, values in allow.items():
            values = _strings(values)
            if not values or not all(isinstance(value, str) and value for value in values):
                raise AllowlistError("%s: allow.%s must be a value or a list of values" % (where, element))
            allowed[element] = frozenset(values)
        out.append(AllowEntry(entry["type"], tuple(sids), allowed, why.strip()))
    return tuple(out)


# --- invariant 1: no wildcard in an Allow statement ------------------------------------------------------------------
def wildcard_action(action):
    """Why an action is not exact (``*``, ``kms:*``, ``s3:Get*``), or None."""
    if "*" in action or "?" in action:
        return "every action" if action == "*" else "a wildcard action"
    return None


def wildcard_resource(resource):
    """Why a resource is more than named resources (``*``, a wildcard account/region/service, ``key/*``), or None."""
    if resource.strip("*") == "":
        return "every resource"
    parts = resource.split(":", 5)
    if parts[0] != "arn" or len(parts) < 6:
        return None
    if any("*" in part or "?" in part for part in parts[1:5]):
        return "a wildcard in the ARN's partition, service, region or account"
    service, name = parts[2], parts[5]
    if service == "s3":
        bucket = name.split("/", 1)[0]
        return "a wildcard bucket" if "*" in bucket or "?" in bucket else None
    rest = re.split(r"[/:]", name, maxsplit=1)
    if len(rest) == 2 and rest[1].strip("*/") == "":
        return "every %s" % rest[0]
    if len(rest) == 1 and rest[0].strip("*") == "":
        return "every resource of %s" % service
    return None


def wildcard_principals(principal):
    """Wildcard principals (``"*"``, ``{"AWS": "*"}``) in a Principal element."""
    if isinstance(principal, str):
        return [principal] if principal == "*" else []
    found = []
    for values in (principal or {}).values():
        found.extend(value for value in _as_list(values) if isinstance(value, str) and "*" in value)
    return found


def statement_findings(statement):
    """``[(element, value, reason)]`` that make an Allow statement broader than named actions on named resources.

    Deny statements only take away, so their wildcards are fine (``Deny s3:* unless TLS``).
    """
    if statement.get("Effect", "Allow") != "Allow":
        return []
    findings = []
    for element in ("NotAction", "NotResource", "NotPrincipal"):
        if element in statement:
            findings.append((element, json.dumps(_plain(statement[element])),
                             "%s in an Allow statement allows everything it does not name" % element))
    for action in _as_list(statement.get("Action")):
        reason = wildcard_action(str(action))
        if reason:
            findings.append(("Action", action, reason))
    for resource in _as_list(statement.get("Resource")):
        reason = wildcard_resource(str(resource))
        if reason:
            findings.append(("Resource", resource, reason))
    for principal in wildcard_principals(statement.get("Principal")):
        findings.append(("Principal", principal, "every principal"))
    return findings


def _plain(value):
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if _is_list(value):
        return [_plain(item) for item in value]
    return value


def policy_documents(resource_type, props):
    """``[(property path, parsed document or None if unreadable)]`` for every policy document of the resource."""
    documents = []
    for path in POLICY_DOCUMENTS.get(resource_type, ()):
        for value, where in _values_at(props, path):
            if isinstance(value, str):
                if not value.strip():
                    continue
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            documents.append((where, value if isinstance(value, Mapping) else None))
    return documents


def statements(document):
    return [item for item in _as_list(document.get("Statement")) if isinstance(item, Mapping)]


def check_no_wildcards(resource_type, props, allowlist=()):
    """Invariant: no ``*``/``service:*`` action, no ``*`` resource, no ``*`` principal in an Allow statement of an IAM,
    trust, KMS key, S3 bucket or Secrets Manager policy, except reviewed allow-list entries (type, Sid, value)."""
    if resource_type not in POLICY_DOCUMENTS:
        return None
    violations = []
    for where, document in policy_documents(resource_type, props):
        if document is None:
            violations.append("%s is not a JSON policy document: it cannot be checked" % where)
            continue
        for index, statement in enumerate(statements(document)):
            sid = statement.get("Sid", "")
            for element, value, reason in statement_findings(statement):
                if any(entry.covers(resource_type, sid, element, value) for entry in allowlist):
                    continue
                violations.append("%s statement %s: %s %r is %s; name exact actions, resources and principals%s" % (
                    where, repr(sid) if sid else "#%d" % (index + 1), element, value, reason,
                    ", or add a reviewed entry to pulumi/policy/allowlist.yml" if sid
                    else " (a statement without a Sid cannot be allow-listed)"))
    return violations


# --- invariant 2: KMS keys rotate and cannot be deleted at once ------------------------------------------------------
def check_kms_key(resource_type, props):
    """Invariant: every KMS key has automatic rotation on and a deletion window of at least 7 days."""
    if resource_type != KMS_KEY:
        return None
    violations = []
    if props.get("enableKeyRotation") is not True:
        violations.append("enableKeyRotation is %r: every key rotates" % props.get("enableKeyRotation"))
    window = props.get("deletionWindowInDays")
    if window is not None and not (isinstance(window, (int, float)) and window >= MIN_KMS_DELETION_WINDOW_DAYS):
        violations.append("deletionWindowInDays is %r: at least %d days to cancel a deletion" % (
            window, MIN_KMS_DELETION_WINDOW_DAYS))
    return violations


# --- invariant 3: S3 buckets are SSE-KMS, versioned, private (a stack policy: settings are resources of their own) ---
def _bucket_refs(props):
    return {str(props[key]) for key in ("id", "bucket", "arn") if props.get(key)}


def _sse_problems(props):
    rules = _as_list(props.get("rules"))
    if not rules:
        return ["no encryption rule"]
    algorithms = [_get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in rules]
    return ["sseAlgorithm %r is not SSE-KMS" % algorithm for algorithm in algorithms
            if algorithm not in SSE_KMS_ALGORITHMS]


def _versioning_problems(props):
    status = _get(props, "versioningConfiguration", "status")
    return [] if status == "Enabled" else ["versioning status %r is not Enabled" % status]


def _public_access_problems(props):
    return ["%s is %r" % (flag, props.get(flag)) for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]


_BUCKET_SETTINGS = (
    ("encryption", S3_ENCRYPTION, _sse_problems, "a BucketServerSideEncryptionConfiguration with SSE-KMS"),
    ("versioning", S3_VERSIONING, _versioning_problems, "a BucketVersioning with status Enabled"),
    ("public access block", S3_PUBLIC_ACCESS_BLOCK, _public_access_problems,
     "a BucketPublicAccessBlock with all four flags true"),
)


def check_buckets(resources):
    """Invariant: every S3 bucket has SSE-KMS, versioning and a public access block with all four flags true.

    ``resources``: ``[(type, urn, props)]`` of the whole stack. A setting resource names its bucket in ``bucket``
    (the bucket's id, which for S3 is its name); a bucket is known by its ``id``, ``bucket`` and ``arn``.
    Returns ``[(urn, violation)]``, or None when the stack has no bucket.
    """
    buckets = [(urn, props) for resource_type, urn, props in resources if resource_type in S3_BUCKETS]
    if not buckets:
        return None
    violations = []
    for urn, props in buckets:
        refs = _bucket_refs(props)
        name = props.get("bucket") or urn
        for what, types, problems, wanted in _BUCKET_SETTINGS:
            settings = [(setting_urn, setting) for resource_type, setting_urn, setting in resources
                        if resource_type in types and str(setting.get("bucket")) in refs]
            if not settings:
                violations.append((urn, "bucket %s has no %s: it needs %s" % (name, what, wanted)))
            for setting_urn, setting in settings:
                for problem in problems(setting):
                    violations.append((setting_urn, "bucket %s %s: %s (it needs %s)" % (name, what, problem, wanted)))
    return violations


# --- invariant 4: IRSA trust pins the service account and the audience -----------------------------------------------
def _subject_problems(subjects):
    problems = []
    for subject in _as_list(subjects):
        if not isinstance(subject, str) or not SERVICE_ACCOUNT_SUBJECT.match(subject):
            problems.append("sub %r is not one service account (system:serviceaccount:<namespace>:<name>)" % (subject,))
    return problems


def check_irsa_trust(resource_type, props):
    """Invariant: a trust with a ``Federated`` principal pins, with StringEquals, ``<issuer>:sub`` to exactly
    ``system:serviceaccount:<ns>:<name>`` and ``<issuer>:aud`` to ``sts.amazonaws.com``."""
    if resource_type != IAM_ROLE:
        return None
    violations = []
    for where, document in policy_documents(resource_type, {"assumeRolePolicy": props.get("assumeRolePolicy")}):
        if document is None:
            violations.append("%s is not a JSON policy document: it cannot be checked" % where)
            continue
        for index, statement in enumerate(statements(document)):
            principal = statement.get("Principal")
            if statement.get("Effect", "Allow") != "Allow" or not isinstance(principal, Mapping) \
                    or "Federated" not in principal:
                continue
            label = "trust statement %s" % (repr(statement["Sid"]) if statement.get("Sid") else "#%d" % (index + 1))
            conditions = statement.get("Condition") or {}
            equals = conditions.get("StringEquals") or {}
            subs = {key[:-len(":sub")]: value for key, value in equals.items() if key.endswith(":sub")}
            if not subs:
                violations.append("%s: no StringEquals on <issuer>:sub: any service account of the cluster could "
                                  "assume the role" % label)
            for issuer, subjects in subs.items():
                violations.extend("%s: %s" % (label, problem) for problem in _subject_problems(subjects))
                audience = equals.get("%s:aud" % issuer)
                if _as_list(audience) != [IRSA_AUDIENCE]:
                    violations.append("%s: StringEquals %s:aud is %r, not %r" % (
                        label, issuer, audience, IRSA_AUDIENCE))
            for operator, keys in conditions.items():
                if operator == "StringEquals" or not isinstance(keys, Mapping):
                    continue
                for key in keys:
                    if key.endswith((":sub", ":aud")):
                        violations.append("%s: %s under %s: pin it with StringEquals only" % (label, key, operator))
    return violations


# --- invariants 5 and 6: Vault's release: TLS everywhere, three Raft voters -------------------------------------------
def vault_chart(resource_type, props):
    """The chart of a Helm release of Vault or OpenBao (``vault``, ``hashicorp/vault``, ``oci://.../openbao``)."""
    if resource_type != HELM_RELEASE:
        return None
    chart = str(props.get("chart") or "").rstrip("/").rsplit("/", 1)[-1]
    chart = re.sub(r"-\d+\.\d+\.\d+.*\.tgz$", "", chart)
    return chart if chart in VAULT_CHARTS else None


_HCL_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<newline>\n)
  | (?P<space>[ \t\r]+)
  | (?P<punct>[{}\[\]=,])
  | (?P<word>[^\s{}\[\]=,"\#]+)
""", re.X | re.S)


class HclBody(NamedTuple):
    attributes: dict
    blocks: list  # [(type, labels, HclBody)]


def _hcl_tokens(text):
    tokens, position = [], 0
    while position < len(text):
        match = _HCL_TOKEN.match(text, position)
        if not match:
            raise ValueError("unexpected %r at offset %d" % (text[position:position + 20], position))
        position = match.end()
        if match.lastgroup in ("comment", "space"):
            continue
        tokens.append((match.lastgroup, match.group()))
    return tokens


def _unquote(token):
    kind, text = token
    return json.loads(text) if kind == "string" else text


def _hcl_value(tokens, position):
    kind, text = tokens[position]
    if text == "[":
        items, position = [], position + 1
        while tokens[position][1] != "]":
            if tokens[position][0] != "newline" and tokens[position][1] != ",":
                items.append(_unquote(tokens[position]))
            position += 1
        return items, position + 1
    if text == "{":
        body, position = _hcl_body(tokens, position + 1)
        return body.attributes, position
    return _unquote((kind, text)), position + 1


def _hcl_body(tokens, position, top=False):
    body = HclBody({}, [])
    while position < len(tokens):
        kind, text = tokens[position]
        if kind == "newline" or text == ",":
            position += 1
            continue
        if text == "}":
            if top:
                raise ValueError("unbalanced }")
            return body, position + 1
        key = _unquote((kind, text))
        position += 1
        if tokens[position][1] == "=":
            body.attributes[key], position = _hcl_value(tokens, position + 1)
            continue
        labels = []
        while tokens[position][1] != "{":
            if tokens[position][0] not in ("string", "word"):
                raise ValueError("unexpected %r after %s" % (tokens[position][1], key))
            labels.append(_unquote(tokens[position]))
            position += 1
        inner, position = _hcl_body(tokens, position + 1)
        body.blocks.append((key, labels, inner))
    if not top:
        raise ValueError("a block is not closed")
    return body, position


def parse_hcl(text):
    """A Vault server config in HCL as nested ``HclBody`` (attributes and blocks): enough to read its settings."""
    try:
        return _hcl_body(_hcl_tokens(text), 0, top=True)[0]
    except IndexError as error:
        raise ValueError("the config ends inside a statement") from error


def _blocks(body, kind, label=None):
    return [inner for block, labels, inner in body.blocks if block == kind and (label is None or labels[:1] == [label])]


def _server_config_problems(config):
    """TLS problems of one server config (HCL text): every tcp listener with TLS and its files, joins over https."""
    if isinstance(config, Mapping) or (isinstance(config, str) and config.lstrip().startswith("{")):
        return ["the server config is JSON: write it in HCL so the pack can read its listeners"]
    try:
        body = parse_hcl(str(config))
    except ValueError as error:
        return ["the server config cannot be read: %s" % error]
    problems = []
    listeners = _blocks(body, "listener", "tcp")
    if not listeners:
        problems.append('the server config has no listener "tcp"')
    for index, listener in enumerate(listeners):
        label = 'listener "tcp" #%d' % (index + 1)
        settings = listener.attributes
        if _truthy(settings.get("tls_disable", False)):
            problems.append("%s: tls_disable = %s" % (label, settings["tls_disable"]))
        for name in ("tls_cert_file", "tls_key_file"):
            if not settings.get(name):
                problems.append("%s: no %s" % (label, name))
    for storage in _blocks(body, "storage", "raft"):
        for join in _blocks(storage, "retry_join"):
            address = join.attributes.get("leader_api_addr")
            if address is not None and not str(address).startswith("https://"):
                problems.append("retry_join leader_api_addr %r is not https" % address)
            scheme = join.attributes.get("auto_join_scheme")
            if scheme is not None and scheme != "https":
                problems.append("retry_join auto_join_scheme %r is not https" % scheme)
    return problems


def _active_config(values):
    """(values path, config) of the server config the chart mounts, given its mode."""
    server = _get(values, "server") or {}
    if _get(server, "ha", "enabled") is True:
        if _get(server, "ha", "raft", "enabled") is True:
            return "server.ha.raft.config", _get(server, "ha", "raft", "config")
        return "server.ha.config", _get(server, "ha", "config")
    return "server.standalone.config", _get(server, "standalone", "config")


def check_tls(resource_type, props):
    """Invariant: TLS on: Vault's release keeps ``global.tlsDisable`` false and its server config listens with TLS;
    ESO stores and the Vault provider reach Vault over https."""
    if vault_chart(resource_type, props):
        values = props.get("values") or {}
        violations = []
        if _get(values, "global", "tlsDisable") is not False:
            violations.append("values.global.tlsDisable is %r: it must be false (the chart's default is true)"
                              % (_get(values, "global", "tlsDisable"),))
        where, config = _active_config(values)
        if not config:
            violations.append("values.%s is not set: the chart's default config listens with tls_disable = 1" % where)
        else:
            violations.extend("values.%s: %s" % (where, problem) for problem in _server_config_problems(config))
        return violations
    store = ESO_STORE.match(resource_type)
    if store:
        server = _get(props, "spec", "provider", "vault", "server")
        if server is None:
            return None
        return [] if str(server).startswith("https://") else [
            "%s's vault server %r is not https" % (store.group("kind"), server)]
    if resource_type == VAULT_PROVIDER:
        address = props.get("address")
        if address is None:
            return None
        return [] if str(address).startswith("https://") else ["the Vault provider's address %r is not https" % address]
    return None


def check_raft_voters(resource_type, props):
    """Invariant: Vault runs in HA on integrated storage with at least three voters (a quorum survives one loss)."""
    if not vault_chart(resource_type, props):
        return None
    server = _get(props.get("values") or {}, "server") or {}
    violations = []
    if _get(server, "ha", "enabled") is not True:
        violations.append("server.ha.enabled is %r: Vault runs in HA" % (_get(server, "ha", "enabled"),))
    replicas = _get(server, "ha", "replicas")
    if not (isinstance(replicas, (int, float)) and not isinstance(replicas, bool) and replicas >= MIN_VAULT_VOTERS):
        violations.append("server.ha.replicas is %r: at least %d Raft voters" % (replicas, MIN_VAULT_VOTERS))
    if _get(server, "ha", "raft", "enabled") is not True:
        violations.append("server.ha.raft.enabled is %r: integrated storage (Raft)" % (
            _get(server, "ha", "raft", "enabled"),))
    if _get(server, "dev", "enabled") is True:
        violations.append("server.dev.enabled is true: dev mode is one in-memory node")
    return violations


# --- invariant 7: ESO stores are restricted -------------------------------------------------------------------------
def _service_account_refs(value, where="spec"):
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = "%s.%s" % (where, key)
            if key == "serviceAccountRef" and isinstance(item, Mapping):
                yield path, item
            else:
                yield from _service_account_refs(item, path)
    elif _is_list(value):
        for index, item in enumerate(value):
            yield from _service_account_refs(item, "%s[%d]" % (where, index))


def _condition_restricts(condition):
    if not isinstance(condition, Mapping):
        return False
    selector = condition.get("namespaceSelector") or {}
    selects = isinstance(selector, Mapping) and (selector.get("matchLabels") or selector.get("matchExpressions"))
    return bool(condition.get("namespaces") or condition.get("namespaceRegexes") or selects)


def check_secret_stores(resource_type, props):
    """Invariant: no ClusterSecretStore reads Vault, every ClusterSecretStore is restricted by ``spec.conditions``,
    and a SecretStore logs in only with service accounts of its own namespace (no ``serviceAccountRef.namespace``)."""
    store = ESO_STORE.match(resource_type)
    if not store:
        return None
    spec = props.get("spec") or {}
    violations = []
    if store.group("kind") == "ClusterSecretStore":
        if _get(spec, "provider", "vault") is not None:
            violations.append("a ClusterSecretStore with a vault provider lets every namespace read what its login "
                              "reads: use a SecretStore per app namespace")
        conditions = _as_list(spec.get("conditions"))
        if not conditions or not all(_condition_restricts(condition) for condition in conditions):
            violations.append("spec.conditions must restrict the namespaces that may use a ClusterSecretStore")
    else:
        for path, ref in _service_account_refs(spec):
            if "namespace" in ref:
                violations.append("%s.namespace is %r: a SecretStore may only use service accounts of its own "
                                  "namespace" % (path, ref["namespace"]))
    return violations


# --- the pack -------------------------------------------------------------------------------------------------------
def _resource_validation(check):
    def validate(args, report_violation):
        violations = check(args.resource_type, args.props)
        if violations is None:
            args.not_applicable()
        for message in violations:
            report_violation(message)
    return validate


def _stack_validation(check):
    def validate(args, report_violation):
        violations = check([(resource.resource_type, resource.urn, resource.props) for resource in args.resources])
        if violations is None:
            args.not_applicable()
        for urn, message in violations:
            report_violation(message, urn)
    return validate


def resource_checks(allowlist):
    """``{policy name: (description, check(type, props))}`` of the resource policies."""
    return {
        "no-wildcard-iam": (
            "IAM, trust, KMS key, S3 bucket and secret policies allow exact actions on named resources to named "
            "principals: no '*' or 'service:*' action, no '*' resource or principal in an Allow statement "
            "(reviewed exceptions: pulumi/policy/allowlist.yml)",
            lambda resource_type, props: check_no_wildcards(resource_type, props, allowlist)),
        "kms-key-rotation": (
            "Every KMS key rotates automatically and has a deletion window of at least %d days"
            % MIN_KMS_DELETION_WINDOW_DAYS, check_kms_key),
        "irsa-trust-pinned": (
            "A role trusted by an OIDC provider pins <issuer>:sub to one service account and <issuer>:aud to "
            "sts.amazonaws.com with StringEquals", check_irsa_trust),
        "vault-tls": (
            "Vault listens with TLS (global.tlsDisable false, tls_disable = false with certificate files, joins over "
            "https); ESO stores and the Vault provider use https", check_tls),
        "vault-raft-voters": (
            "Vault runs in HA with integrated storage (Raft) and at least %d replicas" % MIN_VAULT_VOTERS,
            check_raft_voters),
        "eso-stores-restricted": (
            "No ClusterSecretStore reads Vault; every ClusterSecretStore has spec.conditions; a SecretStore uses only "
            "service accounts of its own namespace", check_secret_stores),
    }


STACK_CHECKS = {
    "s3-buckets-encrypted-versioned-private": (
        "Every S3 bucket has SSE-KMS encryption, versioning and a public access block with all four flags true",
        check_buckets),
}


def build_policies(allowlist):
    """The pack's policies, resource policies first; enforcement comes from the pack (MANDATORY)."""
    policies = [ResourceValidationPolicy(name=name, description=description, validate=_resource_validation(check))
                for name, (description, check) in resource_checks(allowlist).items()]
    policies.extend(StackValidationPolicy(name=name, description=description, validate=_stack_validation(check))
                    for name, (description, check) in STACK_CHECKS.items())
    return policies


ALLOWLIST = load_allowlist()
POLICIES = build_policies(ALLOWLIST)
