#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_auth_kubernetes
short_description: Enable and configure a Kubernetes auth method and its roles
version_added: "0.1.0"
description:
  - Enables a C(kubernetes) auth method at O(mount) when it is missing (C(POST /v1/sys/auth/<mount>)), writes its
    configuration (C(POST /v1/auth/<mount>/config)) when it differs, and creates or updates O(roles)
    (C(POST /v1/auth/<mount>/role/<name>)). With O(exclusive_roles=true) roles on the mount that are not declared
    are deleted.
  - "The configuration and each role are declared in full, as Vault stores them: Vault replaces the whole configuration
    on every write, and an option left out here means Vault's default. Durations compare as seconds (C(1h) equals
    C(3600)); service-account names and namespaces, policies and CIDRs compare as sets."
  - The reviewer JWT cannot be read back from Vault (it only says whether one is set). To detect its drift honestly the
    module keeps a fingerprint of the JWT it last wrote, C(sha256) of the JWT cut to 16 hex digits, as a suffix
    C([heracles reviewer-jwt sha256:<16 hex>]) of the mount's description (C(POST /v1/sys/auth/<mount>/tune)).
    A rerun with the same JWT reports no change; a different JWT, a JWT set by someone else, or a description edited
    by hand is a change and the JWT is written again. The fingerprint cannot be turned back into the JWT.
  - All input is checked before anything is written (required fields, CA and key PEM, the reviewer JWT's shape and
    expiry, role bindings, C(token_ttl) not above C(token_max_ttl)). If writing the configuration of a mount this
    task just enabled fails, the mount is disabled again.
  - V(state=absent) disables the auth method, which deletes its configuration and all its roles.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_audit
  - name: Kubernetes auth method (OpenBao)
    description: Configuration and role parameters.
    link: https://openbao.org/api-docs/auth/kubernetes/
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the mount, configuration and roles and reports what would be enabled, written or deleted.
  diff_mode:
    support: full
    description:
      - Shows mount, configuration and roles before and after. The reviewer JWT appears only as its fingerprint,
        and PEM blocks as short fingerprints.
options:
  mount:
    description: Path of the auth method (without C(auth/)).
    type: str
    default: kubernetes
  state:
    description: V(present) enables and configures the method, V(absent) disables it (deleting its roles).
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the auth mount. The reviewer-JWT fingerprint is appended to it.
      - When not set, an existing description is kept.
    type: str
  kubernetes_host:
    description:
      - URL of the Kubernetes API server as Vault reaches it, for example C(https://kubernetes.default.svc:443).
      - Required to manage the configuration. Leave it and every other configuration option unset to manage only the
        mount and its roles; the configuration is then left as it is.
    type: str
  kubernetes_ca_cert:
    description:
      - PEM CA bundle that signed the API server's certificate. Mutually exclusive with O(kubernetes_ca_cert_file).
      - Required when O(disable_local_ca_jwt=true) (Vault then does not read the pod's CA file).
    type: str
  kubernetes_ca_cert_file:
    description: File with the PEM CA bundle (read on the host that runs the module).
    type: path
  token_reviewer_jwt:
    description:
      - Service-account JWT Vault presents when it calls the TokenReview API (the account needs the
        C(system:auth-delegator) ClusterRole). Mutually exclusive with O(token_reviewer_jwt_file).
      - When neither is given Vault has no reviewer JWT (a write clears one); Vault then uses its own pod's token, or
        with O(disable_local_ca_jwt=true) the JWT of each client that logs in.
    type: str
  token_reviewer_jwt_file:
    description: File with the reviewer JWT (read on the host that runs the module).
    type: path
  issuer:
    description: Expected C(iss) of service-account JWTs (checked only when O(disable_iss_validation=false)).
    type: str
    default: ""
  disable_iss_validation:
    description: Skip C(iss) validation. Compared only when set; Vault's default applies otherwise.
    type: bool
  disable_local_ca_jwt:
    description: Do not read the CA and JWT of the pod Vault runs in (set this when Vault runs outside Kubernetes).
    type: bool
    default: false
  pem_keys:
    description: PEM public keys that verify service-account JWT signatures locally (optional; compared as a set).
    type: list
    elements: str
    default: []
  roles:
    description: Roles on the mount, each declared in full.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Role name.
        type: str
        required: true
      bound_service_account_names:
        description: Service-account names allowed to log in (C(*) for any).
        type: list
        elements: str
        required: true
      bound_service_account_namespaces:
        description: Namespaces allowed to log in (C(*) for any). Required unless the selector is set.
        type: list
        elements: str
        default: []
      bound_service_account_namespace_selector:
        description: Label selector (YAML or JSON) of allowed namespaces.
        type: str
        default: ""
      audience:
        description: Audience the JWT must carry (and that Vault asks the TokenReview for).
        type: str
        default: ""
      alias_name_source:
        description: What names the identity alias.
        type: str
        choices: [serviceaccount_uid, serviceaccount_name]
        default: serviceaccount_uid
      policies:
        description: Policies of tokens issued by the role (C(token_policies)).
        type: list
        elements: str
        default: []
        aliases: [token_policies]
      token_ttl:
        description: Token TTL as seconds or a duration (C(1h), C(30m)); V(0) means the system default.
        type: raw
        default: 0
      token_max_ttl:
        description: Token maximum TTL as seconds or a duration; V(0) means the system default.
        type: raw
        default: 0
      token_explicit_max_ttl:
        description: Hard cap of the token's lifetime as seconds or a duration.
        type: raw
        default: 0
      token_period:
        description: Period of periodic tokens as seconds or a duration.
        type: raw
        default: 0
      token_bound_cidrs:
        description: CIDRs the token may be used from.
        type: list
        elements: str
        default: []
      token_no_default_policy:
        description: Do not attach the C(default) policy.
        type: bool
        default: false
      token_num_uses:
        description: Uses per token (V(0) is unlimited).
        type: int
        default: 0
      token_type:
        description: Type of the tokens issued.
        type: str
        choices: [default, service, batch]
        default: default
  exclusive_roles:
    description: Delete roles on the mount that O(roles) does not declare.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Kubernetes auth for the apps of one environment (Vault outside the cluster)
  heracles.secrets.vault_auth_kubernetes:
    mount: kubernetes
    kubernetes_host: https://api.dev.example.com:443
    kubernetes_ca_cert_file: files/dev-cluster-ca.pem
    token_reviewer_jwt: "{{ reviewer_jwt }}"   # kubectl create token vault-reviewer -n vault --duration=8760h
    disable_local_ca_jwt: true
    exclusive_roles: true
    roles:
      - name: app-a
        bound_service_account_names: [app-a]
        bound_service_account_namespaces: [apps]
        audience: vault
        policies: [app-a]
        token_ttl: 1h
        token_max_ttl: 4h
"""

RETURN = r"""
mount:
  description: The auth mount after the task (null when absent).
  returned: always
  type: dict
  sample:
    path: kubernetes/
    type: kubernetes
    accessor: auth_kubernetes_44e646d7
    description: "apps [heracles reviewer-jwt sha256:3f1c0a9e5b7d2c4a]"
config:
  description: The configuration after the task; PEM blocks and the reviewer JWT as fingerprints only.
  returned: when state=present
  type: dict
  sample:
    kubernetes_host: https://api.dev.example.com:443
    kubernetes_ca_cert: sha256:5c1e2f3a4b6d
    pem_keys: []
    issuer: ""
    disable_local_ca_jwt: true
    token_reviewer_jwt: sha256:3f1c0a9e5b7d2c4a
reviewer_jwt_fingerprint:
  description: Fingerprint of the reviewer JWT this module last wrote (from the mount description), or null.
  returned: always
  type: str
  sample: sha256:3f1c0a9e5b7d2c4a
config_changed:
  description: The configuration was (or in check mode would be) written.
  returned: always
  type: bool
roles:
  description: Role names on the mount after the task.
  returned: always
  type: list
  elements: str
  sample: [app-a, app-b]
roles_created:
  description: Roles created (or that would be).
  returned: always
  type: list
  elements: str
roles_updated:
  description: Roles whose settings were (or would be) changed.
  returned: always
  type: list
  elements: str
roles_deleted:
  description: Roles deleted because of O(exclusive_roles) (or that would be).
  returned: always
  type: list
  elements: str
"""

import base64
import hashlib
import json
import re
import time

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule, fingerprint

ROLE_SPEC = dict(
    name=dict(type="str", required=True),
    bound_service_account_names=dict(type="list", elements="str", required=True),
    bound_service_account_namespaces=dict(type="list", elements="str", default=[]),
    bound_service_account_namespace_selector=dict(type="str", default=""),
    audience=dict(type="str", default=""),
    alias_name_source=dict(type="str", default="serviceaccount_uid", choices=["serviceaccount_uid", "serviceaccount_name"]),
    policies=dict(type="list", elements="str", default=[], aliases=["token_policies"]),
    token_ttl=dict(type="raw", default=0, no_log=False),
    token_max_ttl=dict(type="raw", default=0, no_log=False),
    token_explicit_max_ttl=dict(type="raw", default=0, no_log=False),
    token_period=dict(type="raw", default=0, no_log=False),
    token_bound_cidrs=dict(type="list", elements="str", default=[], no_log=False),
    token_no_default_policy=dict(type="bool", default=False, no_log=False),
    token_num_uses=dict(type="int", default=0, no_log=False),
    token_type=dict(type="str", default="default", choices=["default", "service", "batch"], no_log=False),
)
SET_FIELDS = ("bound_service_account_names", "bound_service_account_namespaces", "token_policies", "token_bound_cidrs")
TTL_FIELDS = ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period")
JWT_MARKER = re.compile(r"\s*\[heracles reviewer-jwt sha256:([0-9a-f]{16})\]\s*$")
UNKNOWN_JWT = "set (not by this module; cannot be compared)"


class InputError(Exception):
    """Bad task input, found before anything is written."""


def jwt_fingerprint(jwt):
    """``sha256:<16 hex>`` of a JWT: what the mount description keeps."""
    return "sha256:" + hashlib.sha256(jwt.encode("utf-8")).hexdigest()[:16]


def split_description(text):
    """(base description, fingerprint or None) of a mount description."""
    text = text or ""
    match = JWT_MARKER.search(text)
    if not match:
        return text, None
    return text[:match.start()], "sha256:" + match.group(1)


def join_description(base, fp):
    if not fp:
        return base
    marker = "[heracles reviewer-jwt %s]" % fp
    return "%s %s" % (base, marker) if base else marker


def to_seconds(value, what):
    """Whole seconds from an int, a digit string or a duration such as ``1h30m`` (Vault stores seconds)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InputError("%s: %r is not a duration" % (what, value))
    try:
        return int(parse_duration(value))
    except ValueError:
        raise InputError("%s: %r is not a duration (use seconds or e.g. 90s, 30m, 1h, 7d)" % (what, value))


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode((part + "=" * (-len(part) % 4)).encode("ascii")))


def check_jwt(jwt, what):
    """Refuse something that is not a JWT, or one already expired (Vault would accept both silently)."""
    parts = jwt.split(".")
    if len(parts) != 3 or not all(parts):
        raise InputError("%s does not look like a JWT (header.payload.signature); was a file path or a "
                         "base64-encoded secret given instead of the token?" % what)
    try:
        claims = _b64json(parts[1])
    except Exception:  # noqa: BLE001 - any decoding error means "not a JWT"
        raise InputError("%s does not look like a JWT: its payload is not base64url JSON" % what)
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and exp <= time.time():
        raise InputError("%s expired at %s UTC; create a new one (kubectl create token <reviewer-sa> -n <namespace> "
                         "--duration=...)" % (what, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(exp))))


def _read_text(path, what):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        raise InputError("Cannot read %s %s: %s" % (what, path, exc.strerror))


CONFIG_OPTIONS = ("kubernetes_ca_cert", "kubernetes_ca_cert_file", "token_reviewer_jwt", "token_reviewer_jwt_file",
                  "issuer", "pem_keys", "disable_local_ca_jwt", "disable_iss_validation")


def wanted_config(p):
    """The configuration to declare, from the task options; raises InputError."""
    host = (p["kubernetes_host"] or "").strip()
    if not host and not any(p.get(k) for k in CONFIG_OPTIONS):
        return None, None  # roles only: the config is managed elsewhere (or there is no API server yet)
    if not host:
        raise InputError("kubernetes_host is required: the URL of the Kubernetes API server as Vault reaches it "
                         "(for example https://kubernetes.default.svc:443, or the EKS endpoint)")
    if not host.startswith(("https://", "http://")):
        raise InputError("kubernetes_host %r must be a URL starting with https://" % host)
    ca = p["kubernetes_ca_cert"]
    if p["kubernetes_ca_cert_file"]:
        ca = _read_text(p["kubernetes_ca_cert_file"], "kubernetes_ca_cert_file")
    ca = (ca or "").strip()
    if ca and "-----BEGIN CERTIFICATE-----" not in ca:
        raise InputError("kubernetes_ca_cert is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")
    if p["disable_local_ca_jwt"] and not ca:
        raise InputError("disable_local_ca_jwt=true needs kubernetes_ca_cert or kubernetes_ca_cert_file (the CA of "
                         "the API server), because Vault then does not read the pod's CA file")
    jwt = p["token_reviewer_jwt"]
    if p["token_reviewer_jwt_file"]:
        jwt = _read_text(p["token_reviewer_jwt_file"], "token_reviewer_jwt_file")
    jwt = (jwt or "").strip() or None
    if jwt:
        check_jwt(jwt, "token_reviewer_jwt")
    keys = [k.strip() for k in p["pem_keys"] or []]
    for key in keys:
        if "-----BEGIN" not in key:
            raise InputError("pem_keys entries must be PEM public keys (-----BEGIN PUBLIC KEY-----)")
    config = dict(kubernetes_host=host, kubernetes_ca_cert=ca, pem_keys=sorted(set(keys)), issuer=p["issuer"] or "",
                  disable_local_ca_jwt=bool(p["disable_local_ca_jwt"]))
    if p["disable_iss_validation"] is not None:
        config["disable_iss_validation"] = p["disable_iss_validation"]
    return config, jwt


def normalise_config(data):
    data = data or {}
    return dict(kubernetes_host=(data.get("kubernetes_host") or "").strip(),
                kubernetes_ca_cert=(data.get("kubernetes_ca_cert") or "").strip(),
                pem_keys=sorted(set(k.strip() for k in data.get("pem_keys") or [])),
                issuer=data.get("issuer") or "",
                disable_local_ca_jwt=bool(data.get("disable_local_ca_jwt")),
                disable_iss_validation=data.get("disable_iss_validation"))


def config_differences(current, wanted):
    diff = []
    for key, value in wanted.items():
        have = current.get(key)
        if key == "kubernetes_host":
            if (have or "").rstrip("/") != value.rstrip("/"):
                diff.append(key)
        elif have != value:
            diff.append(key)
    return diff


def wanted_role(spec):
    """A role as Vault stores it (lists as sorted sets, TTLs in seconds); raises InputError."""
    name = spec["name"]
    if not name or "/" in name:
        raise InputError("role name %r is not valid (non-empty, no /)" % name)
    what = "role %s" % name
    names = [n for n in spec["bound_service_account_names"] or [] if n]
    if not names:
        raise InputError("%s: bound_service_account_names must list at least one name (or *)" % what)
    namespaces = [n for n in spec["bound_service_account_namespaces"] or [] if n]
    if not namespaces and not spec["bound_service_account_namespace_selector"]:
        raise InputError("%s: set bound_service_account_namespaces (or * for any) or "
                         "bound_service_account_namespace_selector" % what)
    role = dict(
        bound_service_account_names=sorted(set(names)),
        bound_service_account_namespaces=sorted(set(namespaces)),
        bound_service_account_namespace_selector=spec["bound_service_account_namespace_selector"] or "",
        audience=spec["audience"] or "",
        alias_name_source=spec["alias_name_source"],
        token_policies=sorted(set(spec["policies"] or [])),
        token_bound_cidrs=sorted(set(spec["token_bound_cidrs"] or [])),
        token_no_default_policy=bool(spec["token_no_default_policy"]),
        token_num_uses=spec["token_num_uses"] or 0,
        token_type=spec["token_type"],
    )
    for key in TTL_FIELDS:
        role[key] = to_seconds(spec[key], "%s: %s" % (what, key))
        if role[key] < 0:
            raise InputError("%s: %s must not be negative" % (what, key))
    if role["token_ttl"] and role["token_max_ttl"] and role["token_ttl"] > role["token_max_ttl"]:
        raise InputError("%s: token_ttl (%ss) is greater than token_max_ttl (%ss)"
                         % (what, role["token_ttl"], role["token_max_ttl"]))
    return role


def normalise_role(data):
    data = data or {}
    role = dict(
        bound_service_account_namespace_selector=data.get("bound_service_account_namespace_selector") or "",
        audience=data.get("audience") or "",
        alias_name_source=data.get("alias_name_source") or "serviceaccount_uid",
        token_no_default_policy=bool(data.get("token_no_default_policy")),
        token_num_uses=data.get("token_num_uses") or 0,
        token_type=data.get("token_type") or "default",
    )
    for key in SET_FIELDS:
        value = data.get(key)
        if key == "token_policies" and not value:
            value = data.get("policies")
        role[key] = sorted(set(value or []))
    for key in TTL_FIELDS:
        role[key] = to_seconds(data.get(key) or 0, key)
    return role


# -- Vault calls (module_utils/api.py) -------------------------------------------------------
def read_auth_mount(client, mount):
    """``GET /v1/sys/auth``: the mount at ``mount`` or None."""
    entry = (api.list_auth_methods(client) or {}).get(mount + "/")
    if not isinstance(entry, dict):
        return None
    return dict(path=mount + "/", type=entry.get("type"), accessor=entry.get("accessor"),
                description=entry.get("description") or "")


def write_config(client, mount, config, jwt):
    """``POST /v1/auth/<mount>/config``: Vault replaces the whole configuration."""
    payload = dict(config)
    if jwt:
        payload["token_reviewer_jwt"] = jwt
    api.configure_kubernetes(client, mount, payload)


# -- the task ------------------------------------------------------------------------------
def declared(module):
    """(mount, config, reviewer JWT, {role name: role}) from the task; fails before any request."""
    p = module.params
    mount = (p["mount"] or "").strip("/")
    if not mount:
        module.fail_json(msg="mount must name the auth method path (for example kubernetes); nothing was changed")
    config = jwt = None
    roles = {}
    if p["state"] == "present":
        try:
            config, jwt = wanted_config(p)
            for spec in p["roles"]:
                if spec["name"] in roles:
                    raise InputError("role %s is declared twice" % spec["name"])
                roles[spec["name"]] = wanted_role(spec)
        except InputError as exc:
            module.fail_json(msg="%s; nothing was changed" % exc)
    return mount, config, jwt, roles


def run_module():
    module = VaultModule(
        argument_spec=dict(
            mount=dict(type="str", default="kubernetes"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            description=dict(type="str"),
            kubernetes_host=dict(type="str"),
            kubernetes_ca_cert=dict(type="str"),
            kubernetes_ca_cert_file=dict(type="path"),
            token_reviewer_jwt=dict(type="str", no_log=True),
            token_reviewer_jwt_file=dict(type="path", no_log=False),
            issuer=dict(type="str", default=""),
            disable_iss_validation=dict(type="bool"),
            disable_local_ca_jwt=dict(type="bool", default=False),
            pem_keys=dict(type="list", elements="str", default=[], no_log=False),
            roles=dict(type="list", elements="dict", default=[], options=ROLE_SPEC),
            exclusive_roles=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("kubernetes_ca_cert", "kubernetes_ca_cert_file"),
                            ("token_reviewer_jwt", "token_reviewer_jwt_file")],
        supports_check_mode=True,
    )
    mount, config, jwt, roles = declared(module)
    client = module.client
    try:
        current_mount = read_auth_mount(client, mount)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading auth methods (GET sys/auth)")
    if current_mount is not None and current_mount["type"] != "kubernetes":
        module.fail_json(msg="auth/%s is a %s auth method, not kubernetes; choose another mount or disable that "
                             "method first; nothing was changed" % (mount, current_mount["type"]))

    if module.params["state"] == "absent":
        absent(module, client, mount, current_mount)
    else:
        present(module, client, mount, current_mount, config, jwt, roles)


def absent(module, client, mount, current_mount):
    changed = current_mount is not None
    if changed and not module.check_mode:
        try:
            api.disable_auth_method(client, mount)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Disabling auth/%s" % mount)
    result = dict(changed=changed, mount=None if changed else current_mount, config_changed=False, roles=[],
                  roles_created=[], roles_updated=[], roles_deleted=[], reviewer_jwt_fingerprint=None)
    if module._diff:
        result["diff"] = dict(before=dict(mount=current_mount) if current_mount else {}, after={})
    module.exit_ok(**result)


class Plan:
    """What differs, computed from reads only (so check mode reports exactly what a run would do)."""

    def __init__(self, module, client, mount, current_mount, config, jwt, roles):
        p = module.params
        self.mount = mount
        self.current_mount = current_mount
        base, self.current_fp = split_description(current_mount["description"]) if current_mount else ("", None)
        # Roles-only runs (config None) keep the fingerprint of the JWT written earlier.
        self.wanted_fp = jwt_fingerprint(jwt) if jwt else (self.current_fp if config is None else None)
        self.description = join_description(p["description"] if p["description"] is not None else base, self.wanted_fp)
        self.create_mount = current_mount is None
        self.tune = not self.create_mount and current_mount["description"] != self.description
        current, existing, current_roles = None, [], {}
        try:
            current = api.read_kubernetes_config(client, mount) if current_mount else None
            existing = api.list_kubernetes_roles(client, mount) if current_mount else []
            current_roles = dict((name, normalise_role(api.read_kubernetes_role(client, mount, name)))
                                 for name in roles if name in existing)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Reading auth/%s" % mount)
        self.current_config = normalise_config(current) if current is not None else None
        self.jwt_set = bool((current or {}).get("token_reviewer_jwt_set"))
        if config is None:
            self.config_diff = []
        else:
            self.config_diff = (sorted(config) if current is None else config_differences(self.current_config, config))
            if jwt and (not self.jwt_set or self.current_fp != self.wanted_fp):
                self.config_diff.append("token_reviewer_jwt")
            elif not jwt and self.jwt_set:
                self.config_diff.append("token_reviewer_jwt")
        self.current_roles = current_roles
        self.existing_roles = existing
        self.create_roles = sorted(n for n in roles if n not in existing)
        self.update_roles = sorted(n for n in roles if n in existing and current_roles[n] != roles[n])
        self.delete_roles = sorted(n for n in existing if n not in roles) if p["exclusive_roles"] else []

    def jwt_view(self, jwt_set, fp):
        if not jwt_set:
            return None
        return fp or UNKNOWN_JWT

    @property
    def changed(self):
        return bool(self.create_mount or self.tune or self.config_diff or self.create_roles or self.update_roles
                    or self.delete_roles)


def config_view(config, jwt):
    """Configuration for output and diffs: PEM blocks as short fingerprints, the JWT as its marker."""
    if config is None:
        return None
    view = dict(config)
    view["kubernetes_ca_cert"] = fingerprint(config["kubernetes_ca_cert"]) if config.get("kubernetes_ca_cert") else ""
    view["pem_keys"] = [fingerprint(k) for k in config.get("pem_keys") or []]
    if view.get("disable_iss_validation") is None:
        view.pop("disable_iss_validation", None)
    view["token_reviewer_jwt"] = jwt
    return view


def present(module, client, mount, current_mount, config, jwt, roles):
    plan = Plan(module, client, mount, current_mount, config, jwt, roles)
    done = dict(created=[], updated=[], deleted=[])
    if not module.check_mode:
        apply_plan(module, client, plan, config, jwt, roles, done)
    after_roles = sorted(set(plan.existing_roles) - set(plan.delete_roles) | set(roles))
    before_jwt = plan.jwt_view(plan.jwt_set, plan.current_fp)
    result = dict(
        changed=plan.changed,
        mount=dict(path=mount + "/", type="kubernetes", description=plan.description,
                   accessor=(current_mount or {}).get("accessor")),
        config=config_view(config, plan.wanted_fp),
        config_changed=bool(plan.config_diff),
        reviewer_jwt_fingerprint=plan.wanted_fp,
        roles=after_roles,
        roles_created=plan.create_roles,
        roles_updated=plan.update_roles,
        roles_deleted=plan.delete_roles,
    )
    if plan.create_mount and not module.check_mode:
        try:
            result["mount"] = read_auth_mount(client, mount)
        except Exception:  # noqa: BLE001 - the accessor is informational
            pass
    if module._diff:
        before_roles = dict((n, plan.current_roles[n]) for n in plan.current_roles)
        before_roles.update((n, "exists (not declared)") for n in plan.existing_roles if n not in roles)
        after = dict((n, "exists (not declared)") for n in plan.existing_roles if n not in roles and n not in plan.delete_roles)
        after.update(roles)
        result["diff"] = dict(
            before=dict(mount=dict(description=current_mount["description"]) if current_mount else None,
                        config=config_view(plan.current_config, before_jwt), roles=before_roles),
            after=dict(mount=dict(description=plan.description), config=config_view(config, plan.wanted_fp), roles=after))
    module.exit_ok(**result)


def apply_plan(module, client, plan, config, jwt, roles, done):
    mount = plan.mount
    if plan.create_mount:
        try:
            api.enable_auth_method(client, "kubernetes", mount, description=plan.description)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Enabling the kubernetes auth method at auth/%s" % mount)
    if plan.config_diff:
        try:
            write_config(client, mount, config, jwt)
        except Exception as exc:  # noqa: BLE001
            rolled_back = False
            if plan.create_mount:
                try:
                    api.disable_auth_method(client, mount)
                    rolled_back = True
                except Exception:  # noqa: BLE001 - reported below
                    pass
            hint = ""
            if "serviceaccount/ca.crt" in str(exc) or "serviceaccount/token" in str(exc):
                hint = (" (Vault looked for the pod's service-account files: when Vault does not run in Kubernetes set "
                        "disable_local_ca_jwt=true and kubernetes_ca_cert)")
            what = "Writing auth/%s/config%s%s" % (mount, hint, "; the new mount was disabled again" if rolled_back else "")
            module.fail_from(exc, what, changed=plan.create_mount and not rolled_back)
    if plan.tune:
        try:
            api.tune_auth_method(client, mount, dict(description=plan.description))
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Setting the description (reviewer-JWT fingerprint) of auth/%s" % mount,
                             changed=bool(plan.config_diff))
    for names, key in ((plan.create_roles, "created"), (plan.update_roles, "updated")):
        for name in names:
            try:
                api.create_kubernetes_role(client, mount, name, roles[name])
            except Exception as exc:  # noqa: BLE001
                module.fail_from(exc, "Writing role %s on auth/%s" % (name, mount), changed=True,
                                 roles_created=done["created"], roles_updated=done["updated"])
            done[key].append(name)
    for name in plan.delete_roles:
        try:
            api.delete_kubernetes_role(client, mount, name)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Deleting role %s on auth/%s" % (name, mount), changed=True,
                             roles_created=done["created"], roles_updated=done["updated"], roles_deleted=done["deleted"])
        done["deleted"].append(name)


def main():
    run_module()


if __name__ == "__main__":
    main()
