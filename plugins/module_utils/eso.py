# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""External Secrets Operator objects, diagnosed: pure functions, no I/O.

Given ExternalSecret, SecretStore and ClusterSecretStore objects as the Kubernetes API returns them
(dicts), :func:`diagnose` says for each ExternalSecret whether it is Ready, why not, which store it
uses, which Vault paths ESO reads for it (built exactly as ESO's Vault provider builds them), and a
list of findings, each with what to do. It also groups the failing ones into *Vault checks* (one per
store and service account) that ``heracles.secrets.vault_eso_check`` runs against Vault.

Nothing here reads a secret value: ExternalSecret status messages and specs carry none.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import re

from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration

GROUP = "external-secrets.io"
API_VERSION = "v1"
# ESO 0.17 stopped serving v1beta1 (and v1alpha1 long before): manifests must say external-secrets.io/v1.
REMOVED_VERSIONS = ("v1beta1", "v1alpha1")
KINDS = ("ExternalSecret", "SecretStore", "ClusterSecretStore")
PLURALS = {"ExternalSecret": "externalsecrets", "SecretStore": "secretstores",
           "ClusterSecretStore": "clustersecretstores"}
DEFAULT_REFRESH = "1h"
DEFAULT_AUTH_MOUNT = "kubernetes"
DEFAULT_KV_VERSION = "v2"
FORCE_SYNC_ANNOTATION = "force-sync"
MIN_SANE_REFRESH = 60  # seconds; shorter refreshes hammer Vault for every ExternalSecret
DEFAULT_CONTROLLER_SA = "external-secrets/external-secrets"

ERROR, WARNING, INFO = "error", "warning", "info"
_SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


def finding(severity, code, message, fix=None):
    """One thing found: what, and what to do about it."""
    return dict(severity=severity, code=code, message=message, fix=fix or "")


# -- object helpers -------------------------------------------------------------------------
def flatten(objects):
    """Objects from ``kubectl get -o yaml`` (``kind: List``), API list responses or single objects."""
    out = []
    for obj in objects or []:
        if not isinstance(obj, dict):
            continue
        kind = obj.get("kind") or ""
        if "items" in obj and (kind == "List" or kind.endswith("List")):
            item_kind = kind[:-4] if kind.endswith("List") and kind != "List" else None
            for item in obj.get("items") or []:
                if isinstance(item, dict):
                    if item_kind and not item.get("kind"):
                        item = dict(item, kind=item_kind, apiVersion=item.get("apiVersion") or obj.get("apiVersion"))
                    out.extend(flatten([item]))
            continue
        out.append(obj)
    return out


def meta(obj):
    return obj.get("metadata") or {}


def spec_of(obj):
    return obj.get("spec") or {}


def ref_of(obj):
    """``namespace/name`` (``name`` for cluster-scoped objects)."""
    md = meta(obj)
    return "%s/%s" % (md["namespace"], md.get("name")) if md.get("namespace") else md.get("name") or "?"


def api_version_of(obj):
    """(group, version) of ``apiVersion``."""
    value = obj.get("apiVersion") or ""
    if "/" in value:
        group, version = value.split("/", 1)
        return group, version
    return "", value


def condition(obj, kind="Ready"):
    """The status condition of type ``kind`` (``Ready``), or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def ready_state(obj):
    """True, False, or None when the controller has not reported a Ready condition."""
    cond = condition(obj)
    if cond is None:
        return None
    return str(cond.get("status")).lower() == "true"


def parse_time(value):
    """Epoch seconds of an RFC 3339 timestamp (``2026-01-02T03:04:05Z``), or None."""
    if not value:
        return None
    match = re.match(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$", str(value))
    if not match:
        return None
    parts = [int(x) for x in match.groups()[:6]]
    epoch = calendar.timegm((parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], 0, 0, 0))
    zone = match.group(7)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def duration_seconds(value):
    """Seconds of an ESO duration (``1h``, ``15m30s``, ``0``), or None when it does not parse."""
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


# -- stores ----------------------------------------------------------------------------------
def store_ref_of(es, ref=None):
    """(kind, namespace or None, name) of the store an ExternalSecret (or one of its sourceRefs) uses."""
    ref = ref if ref is not None else spec_of(es).get("secretStoreRef") or {}
    kind = ref.get("kind") or "SecretStore"
    namespace = meta(es).get("namespace") if kind == "SecretStore" else None
    return kind, namespace, ref.get("name")


def store_label(kind, namespace, name):
    return "%s/%s" % (kind, "%s/%s" % (namespace, name) if namespace else name)


def provider_name(store):
    providers = spec_of(store).get("provider") or {}
    names = [k for k, v in providers.items() if v is not None]
    return names[0] if len(names) == 1 else (",".join(sorted(names)) or None)


def vault_provider(store):
    """The Vault provider of a store, normalised (defaults applied), or None for other providers."""
    vault = (spec_of(store).get("provider") or {}).get("vault")
    if not isinstance(vault, dict):
        return None
    auth = vault.get("auth") or {}
    out = dict(server=vault.get("server") or "", path=vault.get("path"), version=vault.get("version") or DEFAULT_KV_VERSION,
               namespace=vault.get("namespace"), ca_set=bool(vault.get("caBundle") or vault.get("caProvider")),
               auth_method=None, auth_mount=None, role=None, service_account=None, audiences=[], jwt_source=None)
    methods = [k for k, v in auth.items() if v is not None]
    if "kubernetes" in auth and isinstance(auth["kubernetes"], dict):
        k8s = auth["kubernetes"]
        sa_ref = k8s.get("serviceAccountRef") or None
        out.update(auth_method="kubernetes", auth_mount=k8s.get("mountPath") or DEFAULT_AUTH_MOUNT, role=k8s.get("role"))
        if sa_ref:
            out.update(service_account=dict(name=sa_ref.get("name"), namespace=sa_ref.get("namespace")),
                       audiences=list(sa_ref.get("audiences") or []), jwt_source="serviceAccountRef")
        elif k8s.get("secretRef"):
            out.update(jwt_source="secretRef")
        else:
            out.update(jwt_source="controller")
    elif methods:
        out["auth_method"] = methods[0]
    return out


def service_account_for(store_kind, store, provider, es_namespace, controller_sa):
    """(namespace, name) of the service account whose JWT ESO presents to Vault, or None when unknown.

    ``serviceAccountRef``: a SecretStore's account lives in the store's namespace; a ClusterSecretStore's in
    ``serviceAccountRef.namespace``, else in the ExternalSecret's namespace. Without a reference ESO presents
    its own pod's token (the controller's service account, ``controller_sa``).
    """
    if not provider or provider.get("auth_method") != "kubernetes":
        return None
    if provider["jwt_source"] == "serviceAccountRef":
        sa = provider["service_account"]
        if store_kind == "SecretStore":
            namespace = meta(store).get("namespace")
        else:
            namespace = sa.get("namespace") or es_namespace
        return namespace, sa.get("name")
    if provider["jwt_source"] == "controller" and controller_sa:
        namespace, _sep, name = controller_sa.partition("/")
        return namespace, name
    return None


def store_findings(store):
    """Findings about a store on its own: API version, Ready condition, Vault provider mistakes."""
    out = []
    kind = store.get("kind")
    group, version = api_version_of(store)
    if group == GROUP and version in REMOVED_VERSIONS:
        out.append(finding(ERROR, "api_version_removed",
                           "%s %s uses %s/%s, which ESO 0.17 and later no longer serve" % (kind, ref_of(store), group, version),
                           "Change apiVersion to %s/%s (the Vault provider fields are unchanged) and re-apply" % (GROUP, API_VERSION)))
    ready = ready_state(store)
    cond = condition(store) or {}
    if ready is False:
        out.append(finding(ERROR, "store_not_ready",
                           "%s %s is not Ready (%s): %s" % (kind, ref_of(store), cond.get("reason") or "no reason",
                                                            cond.get("message") or "no message"),
                           explain_message(cond.get("message"), None)[1]
                           or "Fix the store's provider settings; every ExternalSecret using it fails until then"))
    elif ready is None and "status" in store:
        out.append(finding(WARNING, "store_not_validated",
                           "%s %s has no Ready condition yet" % (kind, ref_of(store)),
                           "Check that the ESO controller runs: kubectl -n external-secrets logs deploy/external-secrets"))
    provider = vault_provider(store)
    if provider is None:
        return out
    return out + _server_findings(store, provider) + _kv_findings(store, provider) + _auth_findings(store, provider)


def _server_findings(store, provider):
    """The Vault address and its CA."""
    out, kind = [], store.get("kind")
    server = provider["server"]
    if not server:
        out.append(finding(ERROR, "vault_server_missing", "%s %s has no provider.vault.server" % (kind, ref_of(store)),
                           "Set server to Vault's address as the ESO pods reach it (https://...)"))
    elif server.startswith("http://"):
        out.append(finding(WARNING, "vault_server_plaintext", "%s %s talks to Vault over plain HTTP (%s)" % (kind, ref_of(store), server),
                           "Use https:// and set caBundle or caProvider to the CA that signed Vault's certificate"))
    elif server.startswith("https://") and not provider["ca_set"]:
        out.append(finding(INFO, "vault_ca_not_set",
                           "%s %s sets no caBundle/caProvider: ESO trusts only its image's system CAs" % (kind, ref_of(store)),
                           "If sync errors mention x509, set caBundle (base64 PEM) or caProvider to Vault's CA"))
    return out


def _kv_findings(store, provider):
    """The KV path and version."""
    out, kind = [], store.get("kind")
    path = (provider["path"] or "").strip("/")
    if provider["version"] == "v2" and path and (path.endswith("/data") or path == "data"):
        out.append(finding(ERROR, "kv_path_has_data",
                           "%s %s: path %r ends in /data, but ESO adds data/ itself for KV v2, so it reads %s/data/..."
                           % (kind, ref_of(store), provider["path"], path),
                           "Set path to the mount only (%r)" % (path[:-len("/data")] or "<mount>")))
    if provider["version"] not in ("v1", "v2"):
        out.append(finding(ERROR, "kv_version_invalid", "%s %s: version %r is neither v1 nor v2" % (kind, ref_of(store), provider["version"]),
                           "Set version: v2 for a KV v2 mount (the default)"))
    return out


def _auth_findings(store, provider):
    """The auth method: Kubernetes auth's mount path, role and service account."""
    out, kind = [], store.get("kind")
    if provider["auth_method"] is None:
        out.append(finding(ERROR, "vault_auth_missing", "%s %s has no provider.vault.auth" % (kind, ref_of(store)),
                           "Configure auth.kubernetes (mountPath, role, serviceAccountRef)"))
    elif provider["auth_method"] == "kubernetes":
        mount = provider["auth_mount"] or ""
        if mount.startswith("auth/") or mount.startswith("/"):
            out.append(finding(ERROR, "auth_mount_has_prefix",
                               "%s %s: auth.kubernetes.mountPath is %r, but ESO logs in at auth/<mountPath>/login, "
                               "i.e. auth/%s/login" % (kind, ref_of(store), mount, mount.lstrip("/")),
                               "Set mountPath to the mount name without auth/ (%r)" % mount.lstrip("/")[len("auth/"):]
                               if mount.lstrip("/").startswith("auth/") else "Remove the leading /"))
        if not provider["role"]:
            out.append(finding(ERROR, "auth_role_missing", "%s %s: auth.kubernetes.role is empty" % (kind, ref_of(store)),
                               "Set role to the Vault Kubernetes auth role ESO logs in with (external-secrets here)"))
        if kind == "ClusterSecretStore" and provider["jwt_source"] == "serviceAccountRef" and \
                not (provider["service_account"] or {}).get("namespace"):
            out.append(finding(WARNING, "cluster_store_sa_namespace_unset",
                               "ClusterSecretStore %s: serviceAccountRef has no namespace, so ESO uses a service account "
                               "of that name in each ExternalSecret's own namespace" % ref_of(store),
                               "Set serviceAccountRef.namespace (for example external-secrets) unless that is intended"))
    else:
        out.append(finding(INFO, "vault_auth_not_checked",
                           "%s %s authenticates with %s: only Kubernetes auth is checked against Vault" % (kind, ref_of(store), provider["auth_method"]),
                           ""))
    return out


def namespace_allowed(store, namespace):
    """For a ClusterSecretStore: True/False by ``spec.conditions`` (namespaces, namespaceRegexes), None if unknown."""
    conditions = spec_of(store).get("conditions") or []
    if not conditions:
        return True
    unknown = False
    for cond in conditions:
        names = cond.get("namespaces") or []
        regexes = cond.get("namespaceRegexes") or []
        if namespace in names:
            return True
        for regex in regexes:
            try:
                if re.match(regex, namespace):
                    return True
            except re.error:
                unknown = True
        if cond.get("namespaceSelector"):
            unknown = True  # needs the namespace's labels
    return None if unknown else False


# -- remote references and the Vault paths ESO reads ----------------------------------------
def remote_refs(es):
    """Every remote reference of an ExternalSecret: ``data[]`` and ``dataFrom[]`` (extract, find)."""
    spec = spec_of(es)
    out = []
    for index, item in enumerate(spec.get("data") or []):
        remote = item.get("remoteRef") or {}
        source_ref = item.get("sourceRef") or {}
        out.append(dict(source="data[%d]" % index, secret_key=item.get("secretKey"), kind="get",
                        key=remote.get("key"), property=remote.get("property"), version=remote.get("version"),
                        metadata_policy=remote.get("metadataPolicy") or "None",
                        store_ref=source_ref.get("storeRef"), generator=bool(source_ref.get("generatorRef"))))
    for index, item in enumerate(spec.get("dataFrom") or []):
        source_ref = item.get("sourceRef") or {}
        base = dict(secret_key=None, property=None, version=None, metadata_policy="None",
                    store_ref=source_ref.get("storeRef"), generator=bool(source_ref.get("generatorRef")))
        if item.get("extract"):
            extract = item["extract"]
            entry = dict(base, source="dataFrom[%d].extract" % index, kind="extract", key=extract.get("key"),
                         property=extract.get("property"), version=extract.get("version"),
                         metadata_policy=extract.get("metadataPolicy") or "None")
        elif item.get("find"):
            find = item["find"]
            entry = dict(base, source="dataFrom[%d].find" % index, kind="find", key=find.get("path") or "",
                         find_name=(find.get("name") or {}).get("regexp"), find_tags=find.get("tags"))
        else:
            entry = dict(base, source="dataFrom[%d]" % index, kind="generator" if base["generator"] else "unknown", key=None)
        out.append(entry)
    return out


def build_data_path(provider, key):
    """The path ESO's Vault provider reads for ``key`` (its ``buildPath``)."""
    mount = provider.get("path")
    v2 = provider.get("version", DEFAULT_KV_VERSION) == "v2"
    out = key or ""
    if mount:
        cut = mount + "/"
        if out.startswith(cut):
            out = out[len(cut):]
            if v2 and out.startswith("data/"):
                out = out[len("data/"):]
        parts = mount.split("/") + (["data"] if v2 else []) + out.split("/")
        return "/".join(parts)
    if v2 and "/data/" not in out:
        parts = out.split("/")
        return "/".join([parts[0], "data"] + parts[1:])
    return out


def build_metadata_path(provider, key):
    """The metadata path ESO reads or lists (its ``buildMetadataPath``); None when ESO refuses the path."""
    mount = provider.get("path")
    if provider.get("version", DEFAULT_KV_VERSION) == "v1":
        return "%s/%s" % (mount, key) if mount else None
    if not mount:
        if "data" not in (key or ""):
            return None
        return key.replace("data", "metadata", 1)
    return "%s/metadata/%s" % (mount, key)


def vault_requests(provider, ref):
    """[(path, capability)] the store's token needs for one remote reference."""
    if ref["kind"] in ("get", "extract"):
        if not ref.get("key"):
            return []
        if ref.get("metadata_policy") == "Fetch":
            path = build_metadata_path(provider, ref["key"])
            return [(path, "read")] if path else []
        return [(build_data_path(provider, ref["key"]), "read")]
    if ref["kind"] == "find":
        prefix = (ref.get("key") or "").strip("/")
        search = prefix + "/" if prefix else ""
        listed = build_metadata_path(provider, search)
        out = [(listed, "list")] if listed else []
        out.append((build_data_path(provider, search) if search else "%s/data/" % (provider.get("path") or ""), "read"))
        if ref.get("find_tags"):
            out.append((listed, "read"))
        return out
    return []


def key_findings(es, provider, ref):
    """Mistakes in one remote key against a Vault store."""
    out = []
    key = ref.get("key")
    if ref["kind"] in ("get", "extract") and not key:
        out.append(finding(ERROR, "remote_key_missing", "%s %s has no remoteRef key" % (ref_of(es), ref["source"]),
                           "Set the key (the secret's path below the store's mount)"))
        return out
    if not key or provider is None:
        return out
    mount = (provider.get("path") or "").strip("/")
    v2 = provider.get("version") == "v2"
    if v2 and mount and key.startswith("data/"):
        out.append(finding(ERROR, "key_has_data_prefix",
                           "%s %s: key %r starts with data/, and ESO adds data/ for KV v2, so it reads %s"
                           % (ref_of(es), ref["source"], key, build_data_path(provider, key)),
                           "Drop the data/ prefix: key: %s" % key[len("data/"):]))
    if v2 and not mount and "/data/" not in key and ref["kind"] != "find":
        out.append(finding(WARNING, "key_without_mount",
                           "%s %s: the store sets no path, so ESO inserts data/ after the first segment of %r and reads %s"
                           % (ref_of(es), ref["source"], key, build_data_path(provider, key)),
                           "Set the store's path to the KV mount (for example kv-dev) and make keys relative to it"))
    if ref["kind"] == "find" and ref.get("find_tags") and provider.get("version") == "v1":
        out.append(finding(ERROR, "find_tags_kv_v1", "%s %s: find by tags needs KV v2" % (ref_of(es), ref["source"]),
                           "Use find.name or a KV v2 store"))
    if ref.get("metadata_policy") == "Fetch" and provider.get("version") == "v1":
        out.append(finding(ERROR, "metadata_fetch_kv_v1", "%s %s: metadataPolicy Fetch needs KV v2" % (ref_of(es), ref["source"]),
                           "Remove metadataPolicy or use a KV v2 store"))
    return out


# -- the ExternalSecret's own status and spec ------------------------------------------------
# ESO status messages -> (code, what to do). Matched in order, case-insensitive.
_MESSAGES = [
    (r"permission denied|403", "vault_permission_denied",
     "Vault refused the read: the role's policies do not grant read on the path (see the Vault check)"),
    (r"cannot find secret data for key", "property_not_found",
     "The secret exists but has no such field: fix remoteRef.property (field names are case-sensitive)"),
    (r"secret will not be created due to creationpolicy=merge", "merge_target_missing",
     "creationPolicy: Merge only updates an existing Secret and the target does not exist: create it, or use Owner"),
    (r"target is immutable", "target_immutable",
     "The target Secret is immutable: delete it (ESO re-creates it) or set target.immutable: false"),
    (r"secret does not exist|secret not found|no secret|404|could not find secret|nil secret", "vault_secret_not_found",
     "Nothing is stored at the path: seed it (playbooks/seed.yml) or fix remoteRef.key"),
    (r"invalid role name|role .* not found|role .* does not exist", "vault_role_not_found",
     "The store's auth.kubernetes.role does not exist on that auth mount: fix role or run configure.yml"),
    (r"service account (name|namespace) not authorized|namespace not authorized", "vault_sa_not_bound",
     "The role does not bind this service account: add it to bound_service_account_names/namespaces"),
    (r"invalid audience|aud claim|audience", "vault_audience_mismatch",
     "The JWT's audience does not match the role's: set serviceAccountRef.audiences to the role's audience"),
    (r"x509|certificate", "vault_tls",
     "TLS to Vault failed: set caBundle or caProvider on the store to the CA that signed Vault's certificate"),
    (r"sealed", "vault_sealed", "Vault is sealed: unseal it (playbooks/bootstrap.yml)"),
    (r"connection refused|no such host|i/o timeout|deadline exceeded|dial tcp|no route to host", "vault_unreachable",
     "ESO cannot reach Vault: check provider.vault.server, DNS, NetworkPolicies and that Vault is up"),
    (r"not allowed|denied by spec.condition", "store_namespace_denied",
     "The ClusterSecretStore's spec.conditions do not allow this namespace: add it there"),
    (r"could not get (cluster)?secretstore|secretstore.*not found|store.*not found", "store_not_found",
     "The referenced store does not exist: fix secretStoreRef (name, and kind: ClusterSecretStore if it is one)"),
    (r"template", "template_error", "Rendering target.template failed: fix the template (keys are the data[].secretKey names)"),
    (r"could not get secret data from provider", "provider_error",
     "ESO puts the provider's answer in the ExternalSecret's events (kubectl describe externalsecret): see them and "
     "the Vault check below"),
    (r"owned by|already exists", "target_owner_conflict",
     "The target Secret belongs to something else: rename target.name, or use creationPolicy: Merge"),
]


def explain_message(message, es):
    """(code, what to do) for an ESO status message, or (None, None)."""
    if not message:
        return None, None
    creation = ((spec_of(es).get("target") or {}).get("creationPolicy") if es else None) or "Owner"
    text = str(message)
    if creation == "Merge" and re.search(r"not found|does not exist", text, re.I) and \
            not re.search(r"vault|store|remote|provider|data from", text, re.I):
        return "merge_target_missing", ("creationPolicy: Merge only updates an existing Secret and the target does "
                                        "not exist: create it, or use creationPolicy: Owner")
    for pattern, code, fix in _MESSAGES:
        if re.search(pattern, text, re.I):
            return code, fix
    return None, None


def target_findings(es):
    target = spec_of(es).get("target") or {}
    creation = target.get("creationPolicy") or "Owner"
    deletion = target.get("deletionPolicy") or "Retain"
    out = []
    if deletion == "Delete" and creation in ("Merge", "None"):
        out.append(finding(ERROR, "deletion_policy_conflict",
                           "%s: deletionPolicy Delete with creationPolicy %s is refused by ESO's webhook" % (ref_of(es), creation),
                           "Use creationPolicy: Owner with deletionPolicy: Delete, or deletionPolicy: Retain"))
    if deletion == "Merge" and creation == "None":
        out.append(finding(ERROR, "deletion_policy_conflict",
                           "%s: deletionPolicy Merge with creationPolicy None: there is no Secret to merge into" % ref_of(es),
                           "Use creationPolicy: Merge or Owner"))
    if creation == "None":
        out.append(finding(INFO, "creation_policy_none",
                           "%s: creationPolicy None: ESO never writes a Secret for it" % ref_of(es),
                           "Expected only for ExternalSecrets used as a data source for others"))
    if creation == "Orphan":
        out.append(finding(INFO, "creation_policy_orphan",
                           "%s: creationPolicy Orphan: the Secret is kept when the ExternalSecret is deleted" % ref_of(es), ""))
    if not spec_of(es).get("data") and not spec_of(es).get("dataFrom"):
        out.append(finding(ERROR, "no_data", "%s declares neither data nor dataFrom" % ref_of(es),
                           "Add data[] (one key each) or dataFrom[] (extract/find)"))
    return out


def refresh_findings(es, now):
    spec = spec_of(es)
    status = es.get("status") or {}
    raw = spec.get("refreshInterval")
    interval = duration_seconds(raw if raw is not None else DEFAULT_REFRESH)
    policy = spec.get("refreshPolicy") or "Periodic"
    out = []
    if interval is None:
        out.append(finding(ERROR, "refresh_interval_invalid", "%s: refreshInterval %r is not a duration" % (ref_of(es), raw),
                           "Use a Go duration such as 1h or 15m"))
        return out, None
    if policy == "Periodic" and interval == 0:
        out.append(finding(INFO, "refresh_disabled",
                           "%s: refreshInterval 0 -- ESO syncs only when the ExternalSecret changes" % ref_of(es),
                           "A Vault-side change reaches the Secret only after a force-sync (-e eso_force_sync=true)"))
    elif policy == "Periodic" and interval < MIN_SANE_REFRESH:
        out.append(finding(WARNING, "refresh_too_frequent",
                           "%s: refreshInterval %s reads Vault every %ds" % (ref_of(es), raw, interval),
                           "Use 15m-1h unless the value really changes that often; force-sync when needed"))
    elif policy != "Periodic":
        out.append(finding(INFO, "refresh_policy", "%s: refreshPolicy %s" % (ref_of(es), policy),
                           "ESO does not refresh on a timer: use force-sync after changing the value in Vault"))
    refreshed = parse_time(status.get("refreshTime"))
    if now is not None and refreshed and policy == "Periodic" and interval and ready_state(es) is True:
        age = now - refreshed
        if age > 2 * interval + 60:
            out.append(finding(WARNING, "stale",
                               "%s: last refresh %ds ago, more than twice its refreshInterval (%s)" % (ref_of(es), age, raw),
                               "Check that the ESO controller runs and is not rate limited "
                               "(externalsecrets_sync_calls_total{status=\"error\"})"))
    return out, interval


def sort_findings(findings):
    return sorted(findings, key=lambda f: (_SEVERITY_ORDER.get(f["severity"], 9), f["code"]))


# -- events ---------------------------------------------------------------------------------------
EVENT_MESSAGE_LIMIT = 600


def event_time(event):
    for value in (event.get("lastTimestamp"), event.get("eventTime"), event.get("firstTimestamp"),
                  meta(event).get("creationTimestamp")):
        stamp = parse_time(value)
        if stamp:
            return stamp
    return 0


def index_events(objects):
    """{(namespace, name): [Warning events of that ExternalSecret, newest first]}."""
    out = {}
    for obj in objects:
        if obj.get("kind") != "Event":
            continue
        involved = obj.get("involvedObject") or obj.get("regarding") or {}
        if involved.get("kind") != "ExternalSecret":
            continue
        if (obj.get("type") or "Normal") != "Warning":
            continue
        key = (involved.get("namespace") or meta(obj).get("namespace"), involved.get("name"))
        out.setdefault(key, []).append(obj)
    for key in out:
        out[key].sort(key=event_time, reverse=True)
    return out


def event_summary(event):
    message = " ".join(str(event.get("message") or event.get("note") or "").split())
    if len(message) > EVENT_MESSAGE_LIMIT:
        message = message[:EVENT_MESSAGE_LIMIT] + "..."
    return dict(reason=event.get("reason"), message=message, count=event.get("count") or 1,
                last=event.get("lastTimestamp") or event.get("eventTime"))


def latest_time(objects):
    """The newest status or event timestamp in recorded objects: 'now' when they were recorded."""
    stamps = []
    for obj in objects:
        status = obj.get("status") or {}
        stamps.append(parse_time(status.get("refreshTime")))
        for cond in status.get("conditions") or []:
            if isinstance(cond, dict):
                stamps.append(parse_time(cond.get("lastTransitionTime")))
        if obj.get("kind") == "Event":
            stamps.append(event_time(obj))
    stamps = [s for s in stamps if s]
    return max(stamps) if stamps else None


# -- everything together ------------------------------------------------------------------------
def diagnose(objects, now=None, controller_sa=DEFAULT_CONTROLLER_SA, namespaces=None, names=None):
    """Diagnose every ExternalSecret in ``objects``.

    Returns ``{external_secrets, stores, failing, vault_checks, summary}``. ``failing`` lists the
    ExternalSecrets that are not Ready; ``vault_checks`` groups their Vault reads by store and service
    account, in the form ``heracles.secrets.vault_eso_check`` takes as ``checks``.
    """
    objects = flatten(objects)
    stores = {}
    externals = []
    for obj in objects:
        kind = obj.get("kind")
        group = api_version_of(obj)[0]
        if group and group != GROUP:
            continue
        if kind in ("SecretStore", "ClusterSecretStore"):
            key = (kind, meta(obj).get("namespace") if kind == "SecretStore" else None, meta(obj).get("name"))
            stores[key] = obj
        elif kind == "ExternalSecret":
            if namespaces and meta(obj).get("namespace") not in namespaces:
                continue
            if names and meta(obj).get("name") not in names and ref_of(obj) not in names:
                continue
            externals.append(obj)

    store_reports = {}
    for key, store in sorted(stores.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or "")):
        cond = condition(store) or {}
        provider = vault_provider(store)
        store_reports[key] = dict(kind=key[0], namespace=key[1], name=key[2], ref=store_label(*key),
                                  api_version=store.get("apiVersion"), ready=ready_state(store),
                                  reason=cond.get("reason"), message=cond.get("message"),
                                  provider=provider_name(store), vault=provider,
                                  findings=sort_findings(store_findings(store)), used_by=[])

    events = index_events(objects)
    reports = []
    checks = {}
    for es in sorted(externals, key=ref_of):
        es_events = events.get((meta(es).get("namespace"), meta(es).get("name")), [])
        reports.append(_diagnose_one(es, stores, store_reports, checks, now, controller_sa, es_events))

    failing = [r["ref"] for r in reports if r["ready"] is not True]
    summary = dict(total=len(reports), ready=sum(1 for r in reports if r["ready"] is True),
                   not_ready=sum(1 for r in reports if r["ready"] is False),
                   unknown=sum(1 for r in reports if r["ready"] is None),
                   stores=len(store_reports), stores_not_ready=sum(1 for s in store_reports.values() if s["ready"] is False),
                   errors=sum(1 for r in reports for f in r["findings"] if f["severity"] == ERROR))
    return dict(external_secrets=reports, stores=list(store_reports.values()), failing=failing,
                vault_checks=[checks[k] for k in sorted(checks)], summary=summary)


def _diagnose_one(es, stores, store_reports, checks, now, controller_sa, events=()):
    """The report of one ExternalSecret: its state, target, refresh, store and every remote ref, with findings."""
    cond = condition(es) or {}
    ready = ready_state(es)
    warnings = [event_summary(e) for e in events[:3]]
    findings = _state_findings(es, ready, cond, warnings) + target_findings(es)
    refresh, interval = refresh_findings(es, now)
    findings += refresh
    key = store_ref_of(es)
    store, store_report = stores.get(key), store_reports.get(key)
    findings += _store_use_findings(es, key, stores, store_report)
    provider = store_report["vault"] if store_report else None
    ref_findings, refs = _remote_ref_entries(es, provider)
    report = _es_report(es, cond, ready, interval, key, store, store_report, refs, warnings)
    if ready is not True and provider and provider.get("auth_method") == "kubernetes":
        report["vault_check"] = _add_to_check(checks, key, store, provider, es, refs, controller_sa)
    report["findings"] = sort_findings(findings + ref_findings)
    return report


def _state_findings(es, ready, cond, warnings):
    """What the ExternalSecret's apiVersion, Ready condition and latest warning events say."""
    md, findings = meta(es), []
    group, version = api_version_of(es)
    if group == GROUP and version in REMOVED_VERSIONS:
        findings.append(finding(ERROR, "api_version_removed",
                                "%s uses %s/%s, which ESO 0.17 and later no longer serve" % (ref_of(es), group, version),
                                "Change apiVersion to %s/%s and re-apply (kubectl apply); the fields are unchanged" % (GROUP, API_VERSION)))
    if ready is False:
        code, fix = explain_message(cond.get("message"), es)
        findings.append(finding(ERROR, code or "not_ready",
                                "%s is not Ready (%s): %s" % (ref_of(es), cond.get("reason") or "no reason",
                                                              cond.get("message") or "no message"),
                                fix or "Read the controller log: kubectl -n external-secrets logs deploy/external-secrets"))
    if ready is not True and warnings:
        code, fix = explain_message(warnings[0]["message"], es)
        findings.append(finding(ERROR if ready is False else WARNING, "event_%s" % (code or "warning"),
                                "latest event (%s, x%s): %s" % (warnings[0]["reason"], warnings[0]["count"], warnings[0]["message"]),
                                fix or "See kubectl describe externalsecret %s -n %s" % (md.get("name"), md.get("namespace"))))
    elif ready is None:
        findings.append(finding(WARNING, "not_reconciled",
                                "%s has no Ready condition: ESO has not reconciled it" % ref_of(es),
                                "Check that the ESO controller runs and watches this namespace; "
                                "kubectl -n external-secrets logs deploy/external-secrets"))
    return findings


def _store_use_findings(es, key, stores, store_report):
    """Whether the store the ExternalSecret names exists, is Ready and may be used from its namespace."""
    skind, sname = key[0], key[2]
    store = stores.get(key)
    if not sname:
        return [finding(ERROR, "store_ref_missing", "%s has no secretStoreRef.name" % ref_of(es),
                        "Set secretStoreRef.name (and kind: ClusterSecretStore for a cluster-wide store)")]
    if store is None:
        other = [k for k in stores if k[2] == sname]
        fix = "Create the %s or fix secretStoreRef" % skind
        if other:
            fix = "A %s named %s exists: set secretStoreRef.kind: %s" % (other[0][0], sname, other[0][0])
            if other[0][0] == "SecretStore":
                fix = ("A SecretStore named %s exists in namespace %s only: a SecretStore serves its own namespace; "
                       "create one here or use a ClusterSecretStore" % (sname, other[0][1]))
        return [finding(ERROR, "store_missing", "%s uses %s, which does not exist" % (ref_of(es), store_label(*key)), fix)]
    findings = []
    store_report["used_by"].append(ref_of(es))
    if store_report["ready"] is False:
        findings.append(finding(ERROR, "store_not_ready",
                                "its store %s is not Ready: %s" % (store_report["ref"], store_report["message"] or "no message"),
                                "Fix the store first (see its findings)"))
    if skind == "ClusterSecretStore":
        namespace = meta(es).get("namespace")
        allowed = namespace_allowed(store, namespace)
        if allowed is False:
            findings.append(finding(ERROR, "store_namespace_denied",
                                    "%s may not be used from namespace %s (spec.conditions)" % (store_report["ref"], namespace),
                                    "Add the namespace to the ClusterSecretStore's spec.conditions"))
        elif allowed is None:
            findings.append(finding(INFO, "store_namespace_unknown",
                                    "%s restricts namespaces by label selector; not evaluated here" % store_report["ref"], ""))
    return findings


def _remote_ref_entries(es, provider):
    """``(findings, entries)``: each remote ref with the Vault paths and capabilities it needs from ``provider``."""
    findings, refs = [], []
    for ref in remote_refs(es):
        entry = dict(source=ref["source"], kind=ref["kind"], secret_key=ref["secret_key"], key=ref["key"],
                     property=ref["property"], vault_paths=[])
        if ref.get("store_ref"):
            entry["store"] = store_label(*store_ref_of(es, ref["store_ref"]))
            findings.append(finding(INFO, "source_ref_store", "%s %s reads from %s (sourceRef)" % (ref_of(es), ref["source"], entry["store"]),
                                    "Not checked against Vault here"))
        elif ref.get("generator"):
            entry["generator"] = True
        elif provider:
            findings += key_findings(es, provider, ref)
            entry["vault_paths"] = [dict(path=p, capability=c) for p, c in vault_requests(provider, ref)]
        refs.append(entry)
    return findings, refs


def _es_report(es, cond, ready, interval, key, store, store_report, refs, warnings):
    """The ExternalSecret's report fields (findings and vault_check are added by the caller)."""
    md, spec = meta(es), spec_of(es)
    target = spec.get("target") or {}
    skind, sname = key[0], key[2]
    return dict(
        name=md.get("name"), namespace=md.get("namespace"), ref=ref_of(es), api_version=es.get("apiVersion"),
        ready=ready, reason=cond.get("reason"), message=cond.get("message"),
        last_transition=cond.get("lastTransitionTime"),
        refresh_interval=spec.get("refreshInterval", DEFAULT_REFRESH), refresh_seconds=interval,
        refresh_time=(es.get("status") or {}).get("refreshTime"),
        store=dict(kind=skind, name=sname, ref=store_label(*key) if sname else None, found=store is not None,
                   ready=store_report["ready"] if store_report else None,
                   provider=store_report["provider"] if store_report else None),
        target=dict(name=target.get("name") or md.get("name"), creation_policy=target.get("creationPolicy") or "Owner",
                    deletion_policy=target.get("deletionPolicy") or "Retain", template=bool(target.get("template"))),
        remote_refs=refs,
        force_sync=(md.get("annotations") or {}).get(FORCE_SYNC_ANNOTATION),
        events=warnings,
        vault_check=None,
    )


def _add_to_check(checks, key, store, provider, es, refs, controller_sa):
    sa = service_account_for(key[0], store, provider, meta(es).get("namespace"), controller_sa)
    name = store_label(*key)
    if sa and key[0] == "ClusterSecretStore" and provider["jwt_source"] == "serviceAccountRef" and \
            not (provider["service_account"] or {}).get("namespace"):
        name = "%s as %s/%s" % (name, sa[0], sa[1])
    check = checks.get(name)
    if check is None:
        check = dict(name=name, store=store_label(*key), server=provider["server"], auth_mount=provider["auth_mount"],
                     role=provider["role"] or "", service_account_namespace=sa[0] if sa else None,
                     service_account_name=sa[1] if sa else None, audiences=list(provider["audiences"]),
                     kv_mount=(provider["path"] or "").strip("/") or None, kv_version=provider["version"],
                     paths=[], external_secrets=[])
        checks[name] = check
    if ref_of(es) not in check["external_secrets"]:
        check["external_secrets"].append(ref_of(es))
    seen = dict(((p["path"], p["capability"]), p) for p in check["paths"])
    for ref in refs:
        for request in ref["vault_paths"]:
            entry = seen.get((request["path"], request["capability"]))
            if entry is None:
                entry = dict(path=request["path"], capability=request["capability"], sources=[])
                check["paths"].append(entry)
                seen[(request["path"], request["capability"])] = entry
            source = "%s %s" % (ref_of(es), ref["source"])
            if source not in entry["sources"]:
                entry["sources"].append(source)
    return name


def report_lines(result):
    """Human-readable lines for a playbook's debug output."""
    lines = []
    summary = result["summary"]
    lines.append("ExternalSecrets: %d, Ready %d, not Ready %d, not reconciled %d; stores: %d (%d not Ready)"
                 % (summary["total"], summary["ready"], summary["not_ready"], summary["unknown"], summary["stores"],
                    summary["stores_not_ready"]))
    for store in result["stores"]:
        for item in store["findings"]:
            if item["severity"] != INFO:
                lines.append("  [%s] %s%s" % (item["severity"], item["message"], " -> " + item["fix"] if item["fix"] else ""))
    for es in result["external_secrets"]:
        state = {True: "Ready", False: "NOT READY", None: "not reconciled"}[es["ready"]]
        lines.append("%s: %s (store %s)" % (es["ref"], state, es["store"]["ref"]))
        for item in es["findings"]:
            if es["ready"] is True and item["severity"] == INFO:
                continue
            lines.append("  [%s] %s%s" % (item["severity"], item["message"], " -> " + item["fix"] if item["fix"] else ""))
        if es["ready"] is not True:
            reads = {}  # insertion-ordered
            for ref in es["remote_refs"]:
                for request in ref["vault_paths"]:
                    reads.setdefault((request["path"], request["capability"]), []).append(ref["source"])
            for (path, capability), sources in reads.items():
                lines.append("  reads %s (%s) for %s" % (path, capability, ", ".join(sources)))
    return lines
