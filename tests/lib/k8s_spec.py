"""Validate rendered Kubernetes objects against the real specifications, offline.

No API server runs here, so a typo in a rendered manifest would otherwise only show up on a cluster (or,
worse, not at all: structural CRD schemas prune unknown fields silently). This module checks:

* core kinds (``v1``, ``apps/v1``, ``*.k8s.io`` groups...) with ``kubernetes-validate``'s strict JSON schemas
  for :data:`K8S_VERSION`, plus the few API-server rules those schemas lack (:data:`CORE_ENUMS`, names, labels);
* custom resources with ``jsonschema`` against the upstream CRDs stored in ``tests/data/crds/`` (their
  ``openAPIV3Schema``), strict by default: a field the schema does not declare is an error; the CRDs' CEL
  rules (``x-kubernetes-validations``) run through ``cel-python``;
* security posture with checkov (:func:`run_checkov`), which lives in its own venv, ``.venv-checkov``.

A kind with no schema is an error, never a silent pass.
"""

import fnmatch
import functools
import glob
import json
import os
import re
import subprocess

import celpy
import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.33.0"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRD_DIR = os.path.join(REPO_ROOT, "tests", "data", "crds")
CHECKOV_SKIPS = os.path.join(REPO_ROOT, "tests", "data", "checkov-skips.yml")
CHECKOV_VENV = os.path.join(REPO_ROOT, ".venv-checkov")

# Rules the API server enforces in its validation code but the OpenAPI schemas do not carry as enums:
# (apiVersion, kind) -> [(path with [*] for every list item, allowed values)].
# Sources: kubernetes pkg/apis/networking/validation (policyTypes), pkg/apis/core/validation (protocols).
_PROTOCOLS = ("TCP", "UDP", "SCTP")
CORE_ENUMS = {
    ("networking.k8s.io/v1", "NetworkPolicy"): [
        ("spec.policyTypes[*]", ("Ingress", "Egress")),
        ("spec.ingress[*].ports[*].protocol", _PROTOCOLS),
        ("spec.egress[*].ports[*].protocol", _PROTOCOLS),
    ],
    ("v1", "Service"): [
        ("spec.ports[*].protocol", _PROTOCOLS),
        ("spec.type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")),
    ],
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SKIP_ID = re.compile(r"^CKV2?_K8S_\d+$")
_SKIP_KEYS = {"id", "kinds", "resources", "reason"}


def _format_path(path):
    """``spec.data[0].remoteRef`` from a jsonschema path deque (the form kubectl prints)."""
    out = ""
    for part in path:
        out += "[%d]" % part if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _message(path, text):
    where = _format_path(path)
    return "%s: %s" % (where, text) if where else text


# --- custom resources: upstream openAPIV3Schema through jsonschema ------------------------------------------

def _unknown_fields(validator, known, instance, schema):
    """The strict keyword: Kubernetes prunes undeclared fields, so a typo would vanish without this."""
    if not validator.is_type(instance, "object"):
        return
    for key in instance:
        if key not in known:
            yield jsonschema.ValidationError("unknown field %r (not in the CRD schema; the API server would "
                                             "prune it)" % key, path=[key])


_CEL = celpy.Environment()


@functools.lru_cache(maxsize=None)
def _cel_program(rule):
    return _CEL.program(_CEL.compile(rule))


def _cel_rules(validator, rules, instance, schema):
    """``x-kubernetes-validations``: the API server runs these CEL rules; one it cannot run here is an error.

    Transition rules (``oldSelf``) apply to updates only; with no old object they are not applicable.
    The API server evaluates after defaulting; the objects here are not defaulted.
    """
    for rule in rules:
        text = rule["rule"]
        if re.search(r"\boldSelf\b", text):
            continue
        try:
            result = _cel_program(text).evaluate({"self": celpy.json_to_cel(instance)})
        except (celpy.CELParseError, celpy.CELEvalError, TypeError, ValueError) as error:
            result = error
        if isinstance(result, Exception):
            yield jsonschema.ValidationError("cannot evaluate x-kubernetes-validations rule %r: %s" % (text, result))
        elif not bool(result):
            path = [p for p in rule.get("fieldPath", "").split(".") if p]
            yield jsonschema.ValidationError("%s (x-kubernetes-validations rule %r)" % (
                rule.get("message") or "failed", text), path=path)


# OpenAPI v3.0 keeps draft-4 semantics (boolean exclusiveMinimum/Maximum, no const/if), hence Draft4.
_CrdValidator = jsonschema.validators.extend(jsonschema.Draft4Validator, validators={
    "x-heracles-known-fields": _unknown_fields, "x-kubernetes-validations": _cel_rules})


def _prepare(node, strict, structural=True):
    """A copy of a CRD schema node that jsonschema reads as the API server does.

    ``nullable: true`` allows null; in strict mode every structural object schema that neither sets
    ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` lists its known fields.
    Nodes under allOf/anyOf/oneOf/not are value validations only, so they get no known-field list.
    """
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if out.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else list(out["type"]) + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    if "properties" in out:
        out["properties"] = {k: _prepare(v, strict, structural) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _prepare(out["items"], strict, structural)
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _prepare(out["additionalProperties"], strict, structural)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_prepare(v, strict, False) for v in out[key]]
    if "not" in out:
        out["not"] = _prepare(out["not"], strict, False)
    if (strict and structural and out.get("type") == "object" and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        known = set(out.get("properties", {}))
        if out.get("x-kubernetes-embedded-resource"):
            known |= {"apiVersion", "kind", "metadata"}
        out["x-heracles-known-fields"] = sorted(known)
    return out


@functools.lru_cache(maxsize=None)
def crd_schemas():
    """``{(apiVersion, kind): {"schema": openAPIV3Schema, "file": ..., "scope": ...}}`` for every served version."""
    found = {}
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as handle:
            docs = list(yaml.load_all(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        for doc in docs:
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served"):
                    continue
                key = ("%s/%s" % (spec["group"], version["name"]), spec["names"]["kind"])
                if key in found:
                    raise ValueError("%s/%s is defined twice: %s and %s" % (key + (found[key]["file"], path)))
                found[key] = {"schema": version["schema"]["openAPIV3Schema"], "file": os.path.basename(path),
                              "scope": spec.get("scope")}
    return found


@functools.lru_cache(maxsize=None)
def _crd_validator(api_version, kind, strict):
    schema = _prepare(crd_schemas()[(api_version, kind)]["schema"], strict)
    # Root metadata is ObjectMeta whatever the CRD says (usually just ``type: object``): checked on its own.
    schema["properties"] = dict(schema.get("properties", {}), metadata={"type": "object"})
    if "x-heracles-known-fields" in schema:
        schema["x-heracles-known-fields"] = sorted(set(schema["x-heracles-known-fields"]) | {"metadata"})
    return _CrdValidator(schema)


def _validate_custom(obj, strict):
    errors = []
    for error in _crd_validator(obj["apiVersion"], obj["kind"], strict).iter_errors(obj):
        errors.append(_message(error.absolute_path, error.message))
    if isinstance(obj.get("metadata"), dict):
        # ObjectMeta from the core schemas: any kind with a plain ObjectMeta will do.
        holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
        errors += _validate_core(holder, strict)
    return errors


# --- core kinds: kubernetes-validate -------------------------------------------------------------------------

def is_core_api(api_version):
    """True for built-in API groups: the legacy core group, groups without a dot (apps, batch) and *.k8s.io."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _validate_core(obj, strict):
    """kubernetes-validate stops at the first error (it raises jsonschema's best match), so one at most."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=strict)
    except kubernetes_validate.SchemaNotFoundError:
        return ["no schema for %s/%s (Kubernetes %s)" % (obj["apiVersion"], obj["kind"], K8S_VERSION)]
    except kubernetes_validate.ValidationError as error:
        return [_message(error.absolute_path, error.message)]
    return []


def _values_at(value, parts, path):
    if not parts:
        yield path, value
        return
    head, rest = parts[0], parts[1:]
    if head == "[*]":
        for index, item in enumerate(value if isinstance(value, list) else []):
            yield from _values_at(item, rest, path + [index])
    elif isinstance(value, dict) and head in value:
        yield from _values_at(value[head], rest, path + [head])


def _core_enum_errors(obj):
    """:data:`CORE_ENUMS`: values the API server rejects although the schemas type them as plain strings."""
    errors = []
    for spec_path, allowed in CORE_ENUMS.get((obj["apiVersion"], obj["kind"]), []):
        parts = [p for p in re.split(r"\.|(\[\*\])", spec_path) if p]
        for path, value in _values_at(obj, parts, []):
            if value is not None and value not in allowed:
                errors.append(_message(path, "%r is not one of %s (API server validation)" % (value, list(allowed))))
    return errors


# --- metadata -------------------------------------------------------------------------------------------------

def _name_errors(obj):
    """The API server's name and label rules: the OpenAPI schemas only say ``metadata.name`` is a string."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ["metadata: missing (metadata.name is required)"]
    errors = []
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        errors.append("metadata.name: missing or empty")
    elif obj["apiVersion"] == "v1" and obj["kind"] == "Namespace":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            errors.append("metadata.name: %r is not a DNS-1123 label (lower case, digits, '-', at most 63)" % name)
    elif obj["apiVersion"] == "v1" and obj["kind"] == "Service":
        if len(name) > 63 or not _DNS_1035_LABEL.match(name):
            errors.append("metadata.name: %r is not a DNS-1035 label (a letter first, at most 63)" % name)
    elif obj["apiVersion"].startswith("rbac.authorization.k8s.io/"):
        if name in (".", "..") or "/" in name or "%" in name:
            errors.append("metadata.name: %r is not a valid path segment name" % name)
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append("metadata.name: %r is not a DNS-1123 subdomain (lower case, digits, '-', '.')" % name)
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not _DNS_LABEL.match(namespace)):
        errors.append("metadata.namespace: %r is not a DNS-1123 label" % (namespace,))
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    for key, value in labels.items():
        prefix, label = str(key).rpartition("/")[::2]
        if (len(label) > 63 or not _LABEL_NAME.match(label)
                or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))):
            errors.append("metadata.labels: key %r is not a valid label key" % (key,))
        if isinstance(value, str) and value and (len(value) > 63 or not _LABEL_NAME.match(value)):
            errors.append("metadata.labels.%s: value %r is not a valid label value" % (key, value))
    return errors


# --- public API -------------------------------------------------------------------------------------------------

def validate(obj, strict=True):
    """Error messages for one object (empty: valid), each ``<path>: <problem>``.

    ``strict`` rejects fields the schema does not declare (core kinds: kubernetes-validate's strict
    schemas; custom resources: every structural object without preserve-unknown-fields).
    """
    if not isinstance(obj, dict):
        return ["object is a %s, not a mapping" % type(obj).__name__]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return ["apiVersion and kind must be non-empty strings (got %r, %r)" % (api_version, kind)]
    errors = _name_errors(obj)
    if (api_version, kind) in crd_schemas():
        errors += _validate_custom(obj, strict)
    elif is_core_api(api_version):
        errors += _validate_core(obj, strict)
        errors += _core_enum_errors(obj)
    else:
        group = api_version.rpartition("/")[0]
        served = sorted(v for v, k in crd_schemas() if k == kind and v.rpartition("/")[0] == group)
        hint = ("not served; stored: %s" % ", ".join(served)) if served else "add its upstream CRD to tests/data/crds/"
        errors.append("no schema for %s/%s (%s)" % (api_version, kind, hint))
    return errors


def object_key(obj, index=None):
    """``<apiVersion>/<kind> <namespace>/<name>``; ``<apiVersion>/<kind> <name>`` without a namespace."""
    if not isinstance(obj, dict):
        return "<not a mapping #%s>" % index
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or "<unnamed #%s>" % index
    head = "%s/%s" % (obj.get("apiVersion"), obj.get("kind"))
    return "%s %s/%s" % (head, meta["namespace"], name) if meta.get("namespace") else "%s %s" % (head, name)


def validate_all(objects, strict=True):
    """``{object_key: errors}`` for the failing objects only; the same object twice is an error too."""
    failures, seen = {}, set()
    for index, obj in enumerate(objects):
        key = object_key(obj, index)
        errors = validate(obj, strict)
        if key in seen:
            errors.append("duplicate object: the same apiVersion/kind/namespace/name appears earlier")
            key = "%s #%d" % (key, index)
        seen.add(key)
        if errors:
            failures[key] = errors
    return failures


# --- checkov ------------------------------------------------------------------------------------------------------

def checkov_bin():
    """checkov has its own venv: its pins conflict with the dev dependencies."""
    return os.path.join(CHECKOV_VENV, "bin", "checkov")


def load_checkov_skips(path=CHECKOV_SKIPS):
    """The reviewed checkov skips: ``[{id, kinds?, resources?, reason}]``; a skip without a reason is refused."""
    with open(path, encoding="utf-8") as handle:
        skips = yaml.safe_load(handle) or []
    if not isinstance(skips, list):
        raise ValueError("%s: expected a list of skips" % path)
    for entry in skips:
        if not isinstance(entry, dict) or set(entry) - _SKIP_KEYS:
            raise ValueError("%s: %r: a skip has only the keys %s" % (path, entry, sorted(_SKIP_KEYS)))
        if not _SKIP_ID.match(str(entry.get("id", ""))):
            raise ValueError("%s: %r: id must be a checkov Kubernetes check id (CKV_K8S_<n>)" % (path, entry))
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise ValueError("%s: skip %s has no reason" % (path, entry["id"]))
        for key in ("kinds", "resources"):
            if key in entry and (not isinstance(entry[key], list)
                                 or not all(isinstance(v, str) for v in entry[key])):
                raise ValueError("%s: skip %s: %s must be a list of strings" % (path, entry["id"], key))
    return skips


def matching_skip(check, skips):
    """The first skip covering a check: same id, and its kinds / resource patterns (fnmatch) if given."""
    resource = check.get("resource") or ""
    for entry in skips:
        if entry["id"] != check["check_id"]:
            continue
        if "kinds" in entry and resource.split(".", 1)[0] not in entry["kinds"]:
            continue
        if "resources" in entry and not any(fnmatch.fnmatchcase(resource, p) for p in entry["resources"]):
            continue
        return entry
    return None


def _check(raw, directory):
    path = raw.get("file_abs_path") or raw.get("file_path") or ""
    return {"check_id": raw["check_id"], "check_name": raw.get("check_name"), "resource": raw.get("resource"),
            "file": os.path.relpath(path, directory) if os.path.isabs(path) else path.lstrip("/"),
            "lines": raw.get("file_line_range")}


def run_checkov(directory, skips=None, timeout=600):
    """checkov's Kubernetes checks over a directory of manifests, offline.

    Returns ``{"passed": [...], "failed": [...], "skipped": [...], "parsing_errors": [...], "summary": {...}}``,
    each check ``{check_id, check_name, resource, file, lines}``. Failed checks covered by ``skips``
    (see :func:`load_checkov_skips`) move to ``skipped`` with the skip's ``reason``.
    Not ``--quiet``: that drops the passed checks from the JSON, and tests assert on those too.
    """
    binary = checkov_bin()
    if not os.access(binary, os.X_OK):
        raise RuntimeError("checkov is not installed at %s: run `make test` (it installs .venv-checkov from "
                           "requirements-checkov.txt)" % binary)
    directory = os.path.abspath(directory)
    # --skip-download and these variables keep checkov off the network (platform mappings, PyPI version check).
    env = dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE", LOG_LEVEL="ERROR")
    proc = subprocess.run([binary, "-d", directory, "--framework", "kubernetes", "--skip-download",
                           "--output", "json"], cwd=directory, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    try:
        parsed = json.loads(proc.stdout)
    except ValueError:
        parsed = None
    if proc.returncode not in (0, 1) or not isinstance(parsed, (dict, list)):
        raise RuntimeError("checkov failed (exit %d): %s" % (proc.returncode, (proc.stderr or proc.stdout)[-2000:]))
    reports = parsed if isinstance(parsed, list) else [parsed]
    result = {"passed": [], "failed": [], "skipped": [], "parsing_errors": [], "summary": {}}
    for report in reports:
        raw = report.get("results", {})
        result["passed"] += [_check(c, directory) for c in raw.get("passed_checks", [])]
        result["skipped"] += [dict(_check(c, directory), reason=c.get("suppress_comment"))
                              for c in raw.get("skipped_checks", [])]
        for check in (_check(c, directory) for c in raw.get("failed_checks", [])):
            skip = matching_skip(check, skips or [])
            if skip:
                result["skipped"].append(dict(check, reason=skip["reason"]))
            else:
                result["failed"].append(check)
        result["parsing_errors"] += report.get("results", {}).get("parsing_errors", [])
        for key, value in report.get("summary", {}).items():
            if isinstance(value, int):
                result["summary"][key] = result["summary"].get(key, 0) + value
            else:
                result["summary"][key] = value
    return result


def checks_by_id(checks):
    """``{check_id: [resource, ...]}``: the shape most assertions want."""
    out = {}
    for check in checks:
        out.setdefault(check["check_id"], []).append(check["resource"])
    return out


__all__ = ["K8S_VERSION", "CORE_ENUMS", "validate", "validate_all", "object_key", "crd_schemas", "is_core_api",
           "run_checkov", "checkov_bin", "load_checkov_skips", "matching_skip", "checks_by_id"]
