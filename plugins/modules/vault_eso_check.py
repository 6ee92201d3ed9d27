#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_eso_check
short_description: Check in Vault that an External Secrets store's role can log in and read what it references
version_added: "0.1.0"
description:
  - For each entry of O(checks) (one External Secrets Operator store and the service account ESO presents, as
    M(heracles.secrets.eso_status_info) returns them in RV(heracles.secrets.eso_status_info#module:vault_checks)),
    asks Vault what ESO would meet.
  - "Auth: the Kubernetes auth mount exists (C(GET /v1/sys/auth)); the role exists (C(GET /v1/auth/<mount>/role/<role>));
    its C(bound_service_account_names) and C(bound_service_account_namespaces) include the store's service account; its
    C(audience) is among the audiences the store requests; its policies exist (C(GET /v1/sys/policies/acl/<name>))."
  - "Policies: the capabilities the role's policies grant on every referenced path, evaluated by Vault itself. There is
    no token of the role, so the module creates a short-lived token with exactly the role's policies
    (C(POST /v1/auth/token/create), TTL 60 s, the C(default) policy unless the role sets C(token_no_default_policy)),
    asks C(POST /v1/sys/capabilities-accessor) with its accessor and revokes it
    (C(POST /v1/auth/token/revoke-accessor)). The token itself is never used or returned."
  - "Data: the KV mount exists with the store's KV version (C(GET /v1/sys/mounts)), and for KV v2 each referenced
    secret exists (C(GET /v1/<mount>/metadata/<key>)): metadata only, never a value."
  - With O(checks[].login_jwt) or O(checks[].login_jwt_file) (a service-account JWT of the store's account) it also
    logs in for real at C(auth/<mount>/login) and asks C(POST /v1/sys/capabilities-self) with that token, which
    includes identity (entity and group) policies; the token is revoked at once.
  - Every problem is a finding with what to do, for example which policy lacks which path. The module fails only
    on connection errors, or with O(fail_on_findings=true) when a check has an error finding.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.eso_status_info
  - module: heracles.secrets.eso_force_sync
  - module: heracles.secrets.vault_auth_kubernetes
  - name: Vault provider of External Secrets Operator
    description: How ESO builds the paths it reads and how it logs in.
    link: https://external-secrets.io/latest/provider/hashicorp-vault/
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description:
      - Runs the same in check mode. Nothing is configured; the only writes are the short-lived probe token (and the
        optional login token), both revoked before the module returns.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
notes:
  - The module's own token needs read on C(sys/auth), C(sys/mounts), C(auth/<mount>/role/*), C(sys/policies/acl/*) and
    the KV metadata, C(sudo) on C(auth/token/create) (to give the probe token policies it does not hold itself), and
    C(sys/capabilities-accessor) and C(auth/token/revoke-accessor). A root token (bootstrap) has all of them.
  - Without the login check, identity-based policies (entity or group policies ESO's login would also get) are not
    counted, so a path they grant shows as denied. Give a JWT to see the real answer.
  - The store's C(server) is reported only; the checks run against the Vault this module connects to.
options:
  checks:
    description: One entry per store and service account.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label of the check (for example C(ClusterSecretStore/vault-dev)).
        type: str
        required: true
      store:
        description: The store this check is about (reported only).
        type: str
      server:
        description: The Vault address the store uses (reported only).
        type: str
      auth_mount:
        description: The store's C(auth.kubernetes.mountPath), that is the mount name without C(auth/).
        type: str
        default: kubernetes
      role:
        description: The store's C(auth.kubernetes.role).
        type: str
        required: true
      service_account_namespace:
        description: Namespace of the service account ESO presents (unknown when not set).
        type: str
      service_account_name:
        description: Name of that service account (unknown when not set).
        type: str
      audiences:
        description: Audiences the store requests for the service-account token (C(serviceAccountRef.audiences)).
        type: list
        elements: str
        default: []
      kv_mount:
        description: The store's C(path) (the KV mount).
        type: str
      kv_version:
        description: The store's KV version.
        type: str
        choices: [v1, v2]
        default: v2
      paths:
        description: Vault paths ESO reads for the store's ExternalSecrets.
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description: Vault API path without C(/v1/), for example C(kv-dev/data/apps/payments/db).
            type: str
            required: true
          capability:
            description: The capability ESO needs there.
            type: str
            choices: [read, list]
            default: read
          sources:
            description: Which ExternalSecrets reference the path (reported only).
            type: list
            elements: str
            default: []
      external_secrets:
        description: The ExternalSecrets that use this store (reported only).
        type: list
        elements: str
        default: []
      login_jwt:
        description:
          - A service-account JWT of the store's account; when set the module logs in with it for real.
          - Mutually exclusive with O(checks[].login_jwt_file).
        type: str
      login_jwt_file:
        description: File holding such a JWT (for example from C(kubectl create token external-secrets -n external-secrets --audience vault)).
        type: path
  login_jwt_files:
    description:
      - JWT files for the login check by check O(checks[].name) or O(checks[].store), for checks that set neither
        O(checks[].login_jwt) nor O(checks[].login_jwt_file) (handy with checks produced by
        M(heracles.secrets.eso_status_info)).
    type: dict
    default: {}
  fail_on_findings:
    description: Fail the task when any check has a finding of severity C(error).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Diagnose the failing ExternalSecrets
  heracles.secrets.eso_status_info:
    kubeconfig: ~/.kube/prod
  register: eso

- name: Check their stores' roles and policies in Vault
  heracles.secrets.vault_eso_check:
    checks: "{{ eso.vault_checks }}"
  register: vault_check

- name: One store, by hand, with a real login
  heracles.secrets.vault_eso_check:
    checks:
      - name: ClusterSecretStore/vault-prod
        auth_mount: kubernetes-prod
        role: external-secrets
        service_account_namespace: external-secrets
        service_account_name: external-secrets
        audiences: [vault]
        kv_mount: kv-prod
        paths:
          - path: kv-prod/data/apps/payments/db
        login_jwt_file: /tmp/eso.jwt   # kubectl create token external-secrets -n external-secrets --audience vault
    fail_on_findings: true
"""

RETURN = r"""
ok:
  description: No check has an error finding.
  returned: always
  type: bool
  sample: false
checks:
  description: One result per entry of O(checks).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ClusterSecretStore/vault-dev
      ok: false
      auth_mount: kubernetes-dev
      auth_mount_found: true
      role: external-secrets
      role_found: true
      role_settings:
        bound_service_account_names: [external-secrets]
        bound_service_account_namespaces: [external-secrets]
        audience: vault
        token_policies: [dev-eso]
        token_no_default_policy: false
      policies_missing: []
      kv_mount_found: true
      paths:
        - path: kv-dev/data/apps/payments/db
          capability: read
          capabilities: [read]
          allowed: true
          exists: true
          sources: ["payments/payments-db data[0]"]
        - path: kv-dev/data/billing/stripe
          capability: read
          capabilities: [deny]
          allowed: false
          exists: true
          sources: ["billing/stripe data[0]"]
      denied: [kv-dev/data/billing/stripe]
      missing: []
      login:
        attempted: false
      findings:
        - severity: error
          code: path_denied
          message: "role external-secrets (policies dev-eso) may not read kv-dev/data/billing/stripe"
          fix: 'Add to policy dev-eso: path "kv-dev/data/billing/stripe" { capabilities = ["read"] }'
      external_secrets: [billing/stripe, payments/payments-db]
report:
  description: Human-readable lines, for a playbook's debug output.
  returned: always
  type: list
  elements: str
"""

import base64
import json

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod
from ansible_collections.heracles.secrets.plugins.module_utils.errors import describe
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

PROBE_TTL = "60s"
ERROR = "error"
WARNING = "warning"
INFO = "info"

PATH_SPEC = dict(
    path=dict(type="str", required=True),
    capability=dict(type="str", default="read", choices=["read", "list"]),
    sources=dict(type="list", elements="str", default=[]),
)
CHECK_SPEC = dict(
    name=dict(type="str", required=True),
    store=dict(type="str"),
    server=dict(type="str"),
    auth_mount=dict(type="str", default="kubernetes"),
    role=dict(type="str", required=True),
    service_account_namespace=dict(type="str"),
    service_account_name=dict(type="str"),
    audiences=dict(type="list", elements="str", default=[]),
    kv_mount=dict(type="str"),
    kv_version=dict(type="str", default="v2", choices=["v1", "v2"]),
    paths=dict(type="list", elements="dict", default=[], options=PATH_SPEC),
    external_secrets=dict(type="list", elements="str", default=[], no_log=False),
    login_jwt=dict(type="str", no_log=True),
    login_jwt_file=dict(type="path", no_log=False),
)


def finding(severity, code, message, fix=""):
    return dict(severity=severity, code=code, message=message, fix=fix)


# -- decisions (pure) ------------------------------------------------------------------------
def allows(capabilities, needed):
    caps = set(capabilities or [])
    if "deny" in caps:
        return False
    return "root" in caps or needed in caps


def binding_findings(check, role):
    """Would Vault accept the store's service account and audience for this role?"""
    out = []
    names = role.get("bound_service_account_names") or []
    namespaces = role.get("bound_service_account_namespaces") or []
    sa_ns, sa_name = check.get("service_account_namespace"), check.get("service_account_name")
    label = "role %s on auth/%s" % (check["role"], check["auth_mount"])
    if sa_name is None or sa_ns is None:
        out.append(finding(INFO, "service_account_unknown",
                           "the store's service account is not known (secretRef JWT), so its binding is not checked", ""))
    else:
        if "*" not in names and sa_name not in names:
            out.append(finding(ERROR, "sa_name_not_bound",
                               "%s binds service accounts %s, not %s (Vault answers 'service account name not authorized')"
                               % (label, names, sa_name),
                               "Add %s to the role's bound_service_account_names (vault/environments/<env>.yml eso.service_account "
                               "here), or point the store's serviceAccountRef at a bound account" % sa_name))
        if namespaces and "*" not in namespaces and sa_ns not in namespaces:
            out.append(finding(ERROR, "sa_namespace_not_bound",
                               "%s binds namespaces %s, not %s (Vault answers 'namespace not authorized')" % (label, namespaces, sa_ns),
                               "Add %s to the role's bound_service_account_namespaces" % sa_ns))
        if not namespaces and role.get("bound_service_account_namespace_selector"):
            out.append(finding(INFO, "sa_namespace_selector", "%s selects namespaces by label; not evaluated here" % label, ""))
    audience = role.get("audience") or ""
    audiences = check.get("audiences") or []
    if audience and audiences and audience not in audiences:
        out.append(finding(ERROR, "audience_mismatch",
                           "%s requires audience %r, the store requests %s (Vault answers 'invalid audience (aud) claim')"
                           % (label, audience, audiences),
                           "Set serviceAccountRef.audiences: [%s] on the store, or the role's audience to one of those" % audience))
    elif audience and not audiences:
        out.append(finding(WARNING, "audience_not_requested",
                           "%s requires audience %r but the store requests none, so ESO's token carries the API server's "
                           "default audience" % (label, audience),
                           "Set serviceAccountRef.audiences: [%s] on the store" % audience))
    if not role.get("token_policies") and not role.get("policies"):
        out.append(finding(ERROR, "role_without_policies", "%s grants no policies: ESO can log in but read nothing" % label,
                           "Set the role's token_policies (the ESO policy of the environment)"))
    return out


def rule_for(path, capability):
    return 'path "%s" { capabilities = ["%s"] }' % (path, capability)


def path_findings(check, policies, results):
    out = []
    editable = [p for p in policies if p not in ("default", "root")]
    target = editable[0] if len(editable) == 1 else " or ".join(editable) or "a policy of the role"
    for entry in results:
        if entry.get("allowed") is False:
            out.append(finding(ERROR, "path_denied",
                               "role %s (policies %s) may not %s %s (needed by %s)"
                               % (check["role"], ", ".join(policies) or "none", entry["capability"], entry["path"],
                                  ", ".join(entry.get("sources") or []) or "the store"),
                               "Add to policy %s: %s -- or fix the remote key if the path is wrong"
                               % (target, rule_for(entry["path"], entry["capability"]))))
        if entry.get("exists") is False:
            out.append(finding(ERROR, "secret_missing",
                               "nothing is stored at %s (needed by %s)" % (entry["path"], ", ".join(entry.get("sources") or []) or "the store"),
                               "Seed it (playbooks/seed.yml) or fix remoteRef.key"))
        elif entry.get("deleted"):
            out.append(finding(ERROR, "secret_deleted",
                               "the current version of %s is deleted or destroyed" % entry["path"],
                               "Undelete it (kv undelete) or write a new version"))
    return out


def jwt_subject(jwt):
    """(namespace, name) from a service-account JWT's claims (not verified: for a hint only)."""
    try:
        body = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode((body + "=" * (-len(body) % 4)).encode("ascii")))
    except Exception:  # noqa: BLE001 - not a JWT; Vault says so at login
        return None
    k8s = claims.get("kubernetes.io") or {}
    if k8s:
        return k8s.get("namespace"), (k8s.get("serviceaccount") or {}).get("name")
    sub = claims.get("sub") or ""
    parts = sub.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return parts[2], parts[3]
    return None


# -- one check ---------------------------------------------------------------------------------
def new_result(check, mount):
    """The result of one check before anything is known."""
    return dict(name=check["name"], store=check.get("store"), server=check.get("server"), auth_mount=mount,
                role=check["role"], service_account="%s/%s" % (check["service_account_namespace"], check["service_account_name"])
                if check.get("service_account_name") else None,
                auth_mount_found=False, role_found=False, role_settings=None, policies_missing=[], kv_mount_found=None,
                paths=[dict(path=p["path"], capability=p["capability"], sources=list(p["sources"] or []),
                            capabilities=None, allowed=None, exists=None) for p in check["paths"]],
                denied=[], missing=[], login=dict(attempted=False), findings=[],
                external_secrets=list(check["external_secrets"] or []))


def auth_mount_findings(mount, auth_mounts):
    """[] when auth/<mount> is a kubernetes auth method, else the finding that says what it is and what to do."""
    entry = auth_mounts.get(mount.strip("/") + "/")
    if entry is not None and entry.get("type") == "kubernetes":
        return []
    stripped = mount.strip("/")
    if stripped.startswith("auth/"):
        stripped = stripped[len("auth/"):]
    hint = "Enable it (configure.yml) or fix the store's auth.kubernetes.mountPath"
    if stripped != mount and (auth_mounts.get(stripped + "/") or {}).get("type") == "kubernetes":
        hint = "ESO logs in at auth/<mountPath>/login: set mountPath to %r (without auth/)" % stripped
    what = "is a %s mount, not kubernetes" % entry.get("type") if entry else "does not exist"
    return [finding(ERROR, "auth_mount_missing", "auth/%s %s" % (mount.strip("/"), what), hint)]


def check_role(client, check, mount, result):
    """Read the role (None, with a finding, when it is missing) and record its settings and binding findings."""
    role = api.read_kubernetes_role(client, mount, check["role"])
    if role is None:
        roles = api.list_kubernetes_roles(client, mount)
        result["findings"].append(finding(ERROR, "role_missing", "role %r does not exist on auth/%s (roles there: %s)"
                                          % (check["role"], mount, ", ".join(roles) or "none"),
                                          "Fix the store's auth.kubernetes.role, or create the role (configure.yml)"))
        return None
    result["role_found"] = True
    result["role_settings"] = dict(bound_service_account_names=role.get("bound_service_account_names") or [],
                                   bound_service_account_namespaces=role.get("bound_service_account_namespaces") or [],
                                   audience=role.get("audience") or "", token_policies=role_policies(role),
                                   token_no_default_policy=bool(role.get("token_no_default_policy")))
    result["findings"] += binding_findings(check, role)
    return role


def role_policies(role):
    return sorted(set(role.get("token_policies") or role.get("policies") or []))


def check_policies(client, check, policies, result):
    """A finding for each policy the role names that does not exist."""
    for policy in policies:
        if policy in ("default", "root"):
            continue
        if api.read_policy(client, policy) is None:
            result["policies_missing"].append(policy)
            result["findings"].append(finding(ERROR, "policy_missing",
                                              "role %s names policy %s, which does not exist" % (check["role"], policy),
                                              "Create it (configure.yml writes the declared policies) or fix the role's "
                                              "token_policies"))


def check_kv_mount(check, secret_mounts, result):
    """Is the store's path a KV mount of the version the store says? Returns the mount path ("" when none)."""
    kv_mount = (check.get("kv_mount") or "").strip("/")
    if not kv_mount:
        return kv_mount
    kv = secret_mounts.get(kv_mount + "/")
    result["kv_mount_found"] = kv is not None
    findings = result["findings"]
    if kv is None:
        findings.append(finding(ERROR, "kv_mount_missing", "the store's path %s is not a secrets engine mount" % kv_mount,
                                "Set the store's path to the KV mount (for example kv-dev), or enable it (configure.yml)"))
        return kv_mount
    version = "v%s" % ((kv.get("options") or {}).get("version") or "1")
    if kv.get("type") not in ("kv", "generic"):
        findings.append(finding(ERROR, "kv_mount_type", "%s is a %s mount, not kv" % (kv_mount, kv.get("type")),
                                "Point the store's path at the KV mount"))
    elif version != check["kv_version"]:
        findings.append(finding(ERROR, "kv_version_mismatch",
                                "%s is KV %s but the store says version %s" % (kv_mount, version, check["kv_version"]),
                                "Set the store's version: %s" % version))
    return kv_mount


def probe_capabilities(module, client, policies, no_default, result):
    """What a 60 s token with the role's policies may do on each path (``allowed``); a warning when it cannot be told."""
    paths = [p["path"] for p in result["paths"]]
    accessor = None
    try:
        accessor = api.create_token(
            client, policies=policies or ["default"], no_default_policy=bool(no_default), ttl=PROBE_TTL,
            explicit_max_ttl=PROBE_TTL, renewable=False, display_name="heracles-eso-check",
            meta=dict(purpose="heracles.secrets.vault_eso_check capability probe"))["accessor"]
        caps = api.read_capabilities_of_accessor(client, accessor, paths)
        for item in result["paths"]:
            item["capabilities"] = caps.get(item["path"]) or []
            item["allowed"] = allows(item["capabilities"], item["capability"])
    except Exception as exc:  # noqa: BLE001 - a finding, not a failure
        result["findings"].append(finding(WARNING, "capabilities_unknown",
                                          "cannot evaluate the role's policies: %s" % describe(exc)[0],
                                          "The module's token needs sudo on auth/token/create and access to "
                                          "sys/capabilities-accessor; or give login_jwt for a real login"))
    finally:
        if accessor:
            try:
                api.revoke_accessor(client, accessor)
            except Exception as exc:  # noqa: BLE001
                module.warn("Could not revoke the probe token (it expires in %s anyway): %s" % (PROBE_TTL, describe(exc)[0]))


def login_jwt(check, result):
    """The JWT to log in with (login_jwt, or read from login_jwt_file), or None; a finding when the file is unreadable."""
    jwt = check.get("login_jwt")
    if check.get("login_jwt_file"):
        try:
            with open(check["login_jwt_file"]) as handle:
                jwt = handle.read().strip()
        except (IOError, OSError) as exc:
            result["findings"].append(finding(ERROR, "login_jwt_unreadable",
                                              "cannot read login_jwt_file %s: %s" % (check["login_jwt_file"], exc.strerror),
                                              "Point login_jwt_file at a file holding the service-account JWT"))
            jwt = None
    return jwt


def run_check(module, client, check, auth_mounts, secret_mounts):
    mount = (check["auth_mount"] or "kubernetes").strip()
    check = dict(check, auth_mount=mount)
    result = new_result(check, mount)
    result["findings"] += auth_mount_findings(mount, auth_mounts)
    if result["findings"]:
        return finish(result)
    result["auth_mount_found"] = True
    mount = mount.strip("/")

    role = check_role(client, check, mount, result)
    if role is None:
        return finish(result)
    policies = role_policies(role)
    no_default = bool(role.get("token_no_default_policy"))
    check_policies(client, check, policies, result)
    kv_mount = check_kv_mount(check, secret_mounts, result)

    paths = [p["path"] for p in result["paths"]]
    if paths:
        probe_capabilities(module, client, policies, no_default, result)
        if check["kv_version"] == "v2" and kv_mount and result["kv_mount_found"]:
            check_existence(client, kv_mount, result["paths"])
    jwt = login_jwt(check, result)
    if jwt:
        login_check(module, check, mount, jwt, paths, result)
    effective = sorted(set(policies + ([] if no_default else ["default"])))
    result["findings"] += path_findings(check, effective, result["paths"])
    return finish(result)


def check_existence(client, kv_mount, entries):
    prefix = kv_mount + "/data/"
    for entry in entries:
        path = entry["path"]
        if entry["capability"] != "read" or not path.startswith(prefix) or path.endswith("/"):
            continue
        key = path[len(prefix):]
        try:
            meta = api.read_secret_metadata(client, kv_mount, key)
        except Exception:  # noqa: BLE001 - forbidden or unknown: leave it None
            continue
        entry["exists"] = meta is not None
        if meta is None:
            continue
        current = str(meta.get("current_version") or "")
        version = (meta.get("versions") or {}).get(current) or {}
        entry["deleted"] = bool(version.get("deletion_time") or version.get("destroyed"))


def login_check(module, check, mount, jwt, paths, result):
    login = result["login"]
    login.update(attempted=True, ok=False)
    subject = jwt_subject(jwt)
    expected = (check.get("service_account_namespace"), check.get("service_account_name"))
    if subject and expected[1] and tuple(subject) != expected:
        result["findings"].append(finding(WARNING, "login_jwt_other_account",
                                          "the login JWT belongs to %s/%s, the store presents %s/%s" % (subject + expected),
                                          "Create the JWT for the store's account: kubectl create token %s -n %s --audience <role audience>"
                                          % (expected[1], expected[0])))
    try:
        login_client = client_mod.build_client(module.params, login=False)
        auth = api.login_kubernetes(login_client, check["role"], jwt, mount=mount)
    except Exception as exc:  # noqa: BLE001 - the finding is the answer
        message = describe(exc)[0]
        login["error"] = message
        result["findings"].append(finding(ERROR, "login_failed",
                                          "logging in at auth/%s/login as role %s failed: %s" % (mount, check["role"], message),
                                          "Compare the JWT's namespace, name and audience with the role's bindings; "
                                          "check the auth mount's kubernetes_host, CA and reviewer JWT (TokenReview)"))
        return
    login.update(ok=True, policies=sorted(auth.get("policies") or []),
                 service_account=(auth.get("metadata") or {}).get("service_account_name"))
    try:
        if paths:
            caps = api.read_capabilities_self(login_client, paths)
            for entry in result["paths"]:
                entry["login_capabilities"] = caps.get(entry["path"]) or []
                allowed = allows(entry["login_capabilities"], entry["capability"])
                # The real token is the authority (it includes identity policies).
                entry["allowed"] = allowed
    except Exception as exc:  # noqa: BLE001
        login["error"] = describe(exc)[0]
    finally:
        try:
            api.revoke_self(login_client)
        except Exception:  # noqa: BLE001 - it expires with the role's TTL
            module.warn("Could not revoke the login token; it expires with the role's token_ttl")


def finish(result):
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    result["findings"] = sorted(result["findings"], key=lambda f: (order.get(f["severity"], 9), f["code"]))
    result["denied"] = [p["path"] for p in result["paths"] if p.get("allowed") is False]
    result["missing"] = [p["path"] for p in result["paths"] if p.get("exists") is False]
    result["ok"] = not any(f["severity"] == ERROR for f in result["findings"])
    return result


def report_lines(results):
    lines = []
    for res in results:
        state = "OK" if res["ok"] else "PROBLEMS"
        lines.append("Vault check %s (role %s on auth/%s): %s" % (res["name"], res["role"], res["auth_mount"], state))
        for entry in res["paths"]:
            state = {True: "allowed", False: "DENIED", None: "unknown"}[entry.get("allowed")]
            exists = {True: "", False: ", NOT FOUND", None: ""}[entry.get("exists")]
            lines.append("  %s %s: %s%s" % (entry["capability"], entry["path"], state, exists))
        if res["login"].get("attempted"):
            lines.append("  login with the given JWT: %s" % ("ok, policies %s" % ", ".join(res["login"]["policies"])
                                                             if res["login"].get("ok") else "FAILED"))
        for item in res["findings"]:
            lines.append("  [%s] %s%s" % (item["severity"], item["message"], " -> " + item["fix"] if item["fix"] else ""))
    return lines


def run_module():
    module = VaultModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", required=True, options=CHECK_SPEC,
                        mutually_exclusive=[("login_jwt", "login_jwt_file")]),
            login_jwt_files=dict(type="dict", default={}, no_log=False),
            fail_on_findings=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    client = module.client
    try:
        auth_mounts = api.list_auth_methods(client)
        secret_mounts = api.list_mounted_secrets_engines(client)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading sys/auth and sys/mounts")
    results = []
    files = module.params["login_jwt_files"] or {}
    for check in module.params["checks"]:
        if not check.get("login_jwt") and not check.get("login_jwt_file"):
            path = files.get(check["name"]) or files.get(check.get("store") or "")
            if path:
                check = dict(check, login_jwt_file=path)
        try:
            results.append(run_check(module, client, check, auth_mounts, secret_mounts))
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Checking %s" % check["name"], checks=results)
    ok = all(r["ok"] for r in results)
    out = dict(changed=False, ok=ok, checks=results, report=report_lines(results))
    if module.params["fail_on_findings"] and not ok:
        bad = [r["name"] for r in results if not r["ok"]]
        module.fail_json(msg="Vault checks found errors for %s (see checks[].findings); nothing was changed" % ", ".join(bad),
                         **out)
    module.exit_ok(**out)


def main():
    run_module()


if __name__ == "__main__":
    main()
