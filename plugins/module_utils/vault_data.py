# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declared Vault configuration under ``vault/``, turned into the objects to apply.

One loader for both appliers: the ``heracles.secrets.vault_config`` filter (roles/configure)
and the pulumi-vault project import ``load()``, so nothing is declared twice and a test can
prove both produce the same objects.

Layout of ``vault/``::

    common.yml                     password policies, audit devices, rotation cadence per secret kind
    environments/<env>.yml         kv mount, extra mounts, kubernetes auth, apps (with the Kubernetes Secrets
                                   they receive), eso, backup, developers, workloads defaults
    policies/<template>.hcl        ACL policy templates (${env}, ${kv}, ${app})
    password-policies/<name>.hcl   password policies
    seed/<env>.yml                 seed data: the secrets' fields (the apps' mappings are checked against it)

``load`` answers what Vault holds; ``load_workloads`` what reaches the pods (apps, their SecretStore,
ExternalSecrets, consumers, network rules), checked against the seed before anything is rendered.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import string

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False


class VaultDataError(ValueError):
    """The declared data is inconsistent; raised before anything is applied."""


_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# The Kubernetes auth role the platform's backup CronJob logs in with. ESO has none: each app namespace's
# SecretStore logs in as the app (see load_workloads).
BACKUP_ROLE = "vault-backup"
# The role of the in-cluster rotation job (playbooks/rotate.yml in a CronJob).
ROTATOR_ROLE = "vault-rotator"


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise VaultDataError("cannot read %s: %s" % (path, exc.strerror))


def _yaml(path):
    data = yaml.safe_load(_read(path)) or {}
    if not isinstance(data, dict):
        raise VaultDataError("%s must be a mapping" % path)
    return data


def render(template_text, variables, where):
    """Substitute ``${var}``; an unknown variable is an error, not an empty string."""
    try:
        return string.Template(template_text).substitute(variables)
    except KeyError as exc:
        raise VaultDataError("%s uses ${%s}, which is not defined for it" % (where, exc.args[0]))
    except ValueError as exc:
        raise VaultDataError("%s: %s" % (where, exc))


def _policy(data_dir, template, variables, name):
    path = os.path.join(data_dir, "policies", template + ".hcl")
    return render(_read(path), variables, "policy %s (template %s)" % (name, template))


def load_environment(data_dir, env):
    path = environment_file(data_dir, env)
    if not os.path.exists(path):
        raise VaultDataError("no declared environment %r (expected %s)" % (env, path))
    data = _yaml(path)
    if data.get("environment") != env:
        raise VaultDataError("%s declares environment %r, expected %r" % (path, data.get("environment"), env))
    for key in ("kv", "kubernetes"):
        if not isinstance(data.get(key), dict) or not data[key].get("path"):
            raise VaultDataError("%s: %s.path is required" % (path, key))
    return data


def load(data_dir, environments):
    """Return ``{password_policies, policies, mounts, auth, audit, databases}`` for ``environments``.

    ``databases`` lists ``load_databases`` of each environment that declares one (its mount is in ``mounts`` too,
    with its lease TTLs as ``config``; each app's policy allows ``creds/<role>`` of the app's own roles only).
    """
    if not HAS_YAML:
        raise VaultDataError("PyYAML is required to read the vault/ data")
    if isinstance(environments, str):
        environments = [environments]
    out = _load_common(data_dir)
    for env in environments:
        _add_environment(out, data_dir, env)
    _check_unique(out["mounts"], "mount")
    _check_unique(out["auth"], "auth mount")
    return out


def _load_common(data_dir):
    """What ``common.yml`` gives every environment: password policies and audit devices."""
    common = _yaml(os.path.join(data_dir, "common.yml"))
    out = dict(password_policies={}, policies={}, mounts=[], auth=[], audit=[], databases=[])
    for name, rel in sorted((common.get("password_policies") or {}).items()):
        out["password_policies"][name] = _read(os.path.join(data_dir, rel))
    for device in common.get("audit") or []:
        out["audit"].append(dict(path=device["path"], type=device["type"], description=device.get("description", ""),
                                 options=dict(device.get("options") or {})))
    return out


class _EnvironmentPolicies(object):
    """Adds an environment's policies to ``out["policies"]``, rendered from ``vault/policies/<template>``."""

    def __init__(self, out, data_dir, env, kv):
        self.policies, self.data_dir = out["policies"], data_dir
        self.base = dict(env=env, kv=kv)

    def add(self, name, template, extra=None):
        if not _NAME.match(name):
            raise VaultDataError("policy name %r must be lower-case letters, digits and '-'" % name)
        if name in self.policies:
            raise VaultDataError("policy %r is declared twice" % name)
        self.policies[name] = self.render(template, name, extra)

    def extend(self, name, template, extra):
        """Append another template's rules to policy ``name``."""
        self.policies[name] += "\n" + self.render(template, name, extra)

    def render(self, template, name, extra=None):
        return _policy(self.data_dir, template, dict(self.base, **(extra or {})), name)


def _add_environment(out, data_dir, env):
    """One environment's mounts, policies, Kubernetes auth roles and database engine, added to ``out``."""
    data = load_environment(data_dir, env)
    load_workloads(data_dir, env)  # the apps' roles come from entries that must also render: check them first
    databases = load_databases(data_dir, env)
    kv, k8s = data["kv"], data["kubernetes"]
    policies = _EnvironmentPolicies(out, data_dir, env, kv["path"])
    out["mounts"].append(dict(path=kv["path"], kind="secret", type="kv", description=kv.get("description", ""),
                              options={"version": "2"},
                              kv_config=dict(max_versions=int(kv.get("max_versions", 10)),
                                             cas_required=bool(kv.get("cas_required", False)))))
    for mount in data.get("mounts") or []:
        out["mounts"].append(dict(path=mount["path"], kind="secret", type=mount["type"],
                                  description=mount.get("description", ""), options=dict(mount.get("options") or {})))
    common_role = dict(audience=k8s.get("audience"), token_ttl=k8s.get("token_ttl"),
                       token_max_ttl=k8s.get("token_max_ttl"))
    roles = [_app_role(policies, env, app, databases, common_role) for app in data.get("apps") or []]
    roles.extend(_job_roles(policies, data_dir, env, data, databases, common_role))
    policies.add("%s-devops" % env, "devops")
    policies.add("%s-seeder" % env, "seeder")
    if data.get("developers"):
        policies.add("%s-developer" % env, "developer")
    out["auth"].append(dict(path=k8s["path"], type="kubernetes", environment=env,
                            description=k8s.get("description", ""), roles=roles))
    if databases:
        out["mounts"].append(dict(path=databases["mount"], kind="secret", type="database",
                                  description=databases["description"], options={},
                                  config=dict(default_lease_ttl=databases["default_ttl"],
                                              max_lease_ttl=databases["max_ttl"])))
        out["databases"].append(databases)


def _app_role(policies, env, app, databases, common_role):
    """The app's Kubernetes auth role and its policy (its KV paths, and creds of its own database roles only)."""
    policy = "%s-app-%s" % (env, app["name"])
    policies.add(policy, "app", dict(app=app["name"]))
    for db_role in (databases or {}).get("roles") or []:
        if db_role["app"] == app["name"]:
            policies.extend(policy, "app-database", dict(app=app["name"], mount=databases["mount"], role=db_role["name"]))
    role = dict(name=app["name"], bound_service_account_names=[app.get("service_account", app["name"])],
                bound_service_account_namespaces=[app.get("namespace", app["name"])], policies=[policy])
    role.update(common_role)
    return role


def _job_roles(policies, data_dir, env, data, databases, common_role):
    """The roles of the in-cluster backup and rotation jobs, with their policies, when the environment has them."""
    roles = []
    if data.get("backup"):
        roles.append(_backup_role(environment_file(data_dir, env), data["backup"], env, common_role))
        policies.add("%s-backup" % env, "backup")
    if data.get("rotation"):
        roles.append(_job_role(environment_file(data_dir, env), "rotation", data["rotation"], ROTATOR_ROLE,
                               "%s-rotator" % env, common_role))
        policies.add("%s-rotator" % env, "rotator")
        if databases:  # rotate.yml rotates the connections' root credentials on their window
            policies.extend("%s-rotator" % env, "rotator-database", dict(mount=databases["mount"]))
    return roles


def environments(data_dir):
    """Every declared environment: the names of ``environments/*.yml``, sorted (no list is kept elsewhere)."""
    folder = os.path.join(data_dir, "environments")
    try:
        names = sorted(name[:-4] for name in os.listdir(folder) if name.endswith(".yml"))
    except (IOError, OSError) as exc:
        raise VaultDataError("cannot list %s: %s" % (folder, exc.strerror))
    if not names:
        raise VaultDataError("%s declares no environment (expected <env>.yml files)" % folder)
    return names


def environment_file(data_dir, env):
    """``environments/<env>.yml`` under ``data_dir``."""
    return os.path.join(data_dir, "environments", env + ".yml")


def _backup_role(where, backup, env, common_role):
    """The raft snapshot job's role: its own service account, one policy, no default policy, its own short TTLs."""
    return _job_role(where, "backup", backup, BACKUP_ROLE, "%s-backup" % env, common_role)


def _job_role(where, block, job, role_name, policy, common_role):
    """A platform job's role (snapshots, rotation): its own service account, one policy, no default policy."""
    for key in ("namespace", "service_account", "token_ttl", "token_max_ttl"):
        if not job.get(key):
            raise VaultDataError("%s: %s.%s is required (the job's identity and token lifetime)" % (where, block, key))
    role = dict(common_role)
    role.update(name=role_name, bound_service_account_names=[job["service_account"]],
                bound_service_account_namespaces=[job["namespace"]], policies=[policy],
                token_ttl=job["token_ttl"], token_max_ttl=job["token_max_ttl"], token_no_default_policy=True)
    return role


def _check_unique(items, what):
    seen = set()
    for item in items:
        if item["path"] in seen:
            raise VaultDataError("%s %r is declared twice" % (what, item["path"]))
        seen.add(item["path"])


# --- workload delivery: what reaches the pods -------------------------------------------------------------------
# Kubernetes names: a namespace is a DNS label (RFC 1123), a Secret or workload name a DNS subdomain.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# ESO's refreshInterval is a Go duration (metav1.Duration): no days, units from ns to h.
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h))+$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)")
# ``{{ .key }}`` or ``{{ index . "key" }}`` (and inside pipelines): the data keys a template reads.
_TEMPLATE_ACTION = re.compile(r"{{-?(.*?)-?}}", re.S)
_TEMPLATE_DOT_KEY = re.compile(r"(?:^|[\s(|])\.([A-Za-z_][A-Za-z0-9_]*)")
_TEMPLATE_INDEX_KEY = re.compile(r"index\s+\.\s+\"([^\"]+)\"")
SECRET_TYPES = ("Opaque", "kubernetes.io/basic-auth", "kubernetes.io/tls", "kubernetes.io/dockerconfigjson",
                "kubernetes.io/ssh-auth")
CREATION_POLICIES = ("Owner", "Merge", "Orphan")
DELETION_POLICIES = ("Retain", "Delete", "Merge")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
WORKLOAD_DEFAULTS = dict(store_name="vault", refresh_interval="1h", operator_group="", creation_policy="Owner",
                         deletion_policy="Retain")


def go_duration_seconds(value):
    """Seconds of a Go duration (``1h30m``), as ESO parses refreshInterval; ``None`` when it does not parse."""
    text = str(value)
    if not _GO_DURATION.match(text):
        return None
    return sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_PART.findall(text))


def template_keys(template_text):
    """The data keys a Go template reads (``.key`` and ``index . "key"``)."""
    keys = set()
    for action in _TEMPLATE_ACTION.findall(template_text):
        keys.update(_TEMPLATE_DOT_KEY.findall(action))
        keys.update(_TEMPLATE_INDEX_KEY.findall(action))
    return keys


def seed_fields(data_dir, env):
    """``{vault path: set(field names)}`` declared in ``seed/<env>.yml`` (clear fields and generated ones)."""
    path = os.path.join(data_dir, "seed", env + ".yml")
    if not os.path.exists(path):
        return {}
    seed = _yaml(path)
    fields = {}
    for section in ("secrets", "generate"):
        for secret_path, values in (seed.get(section) or {}).items():
            fields.setdefault(secret_path, set()).update((values or {}).keys())
    return fields


class _AppChecker(object):
    """Errors name the file and the app, so a user knows where to look."""

    def __init__(self, where, app_name):
        self.where, self.app = where, app_name

    def fail(self, message):
        raise VaultDataError("%s: app %s: %s" % (self.where, self.app, message))

    def name(self, value, what, pattern=_DNS_LABEL):
        if not isinstance(value, str) or not pattern.match(value):
            kind = "a DNS label (lower-case letters, digits, '-', at most 63)" if pattern is _DNS_LABEL else \
                "a DNS subdomain (lower-case letters, digits, '-', '.')"
            self.fail("%s %r must be %s" % (what, value, kind))
        return value

    def choice(self, value, choices, what):
        if value not in choices:
            self.fail("%s %r is not one of %s" % (what, value, ", ".join(choices)))
        return value

    def duration(self, value, what):
        if go_duration_seconds(value) is None or go_duration_seconds(value) <= 0:
            self.fail("%s %r does not parse as a Go duration such as 15m, 1h or 1h30m (no days)" % (what, value))
        return str(value)


_VAULT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")


def _own_path(check, app, name, what):
    """``apps/<app>/<name>``: an app maps only its own Vault secrets (no ``..``, no absolute paths)."""
    if not isinstance(name, str) or not _VAULT_NAME.match(name) or ".." in name.split("/"):
        check.fail("%s %r must name a secret under apps/%s/ (letters, digits, '_', '-', '.', '/'; no '..')"
                   % (what, name, app))
    return "apps/%s/%s" % (app, name)


def _secret_ref(check, app, ref, fields, secret_name, key):
    """One ``data`` entry: ``{from: <secret under apps/<app>/>, property: <field>}``, checked against the seed."""
    if not isinstance(ref, dict) or set(ref) - {"from", "property"} or not ref.get("from"):
        check.fail("Secret %s key %s must map to {from: <vault secret>, property: <field>}, got %r"
                   % (secret_name, key, ref))
    remote = _own_path(check, app, ref["from"], "Secret %s key %s: from" % (secret_name, key))
    if remote not in fields:
        check.fail("Secret %s key %s reads %s, which seed declares no field of (declared: %s)"
                   % (secret_name, key, remote, ", ".join(sorted(p for p in fields if p.startswith("apps/%s/" % app)))
                      or "none"))
    prop = ref.get("property", key)
    if prop not in fields[remote]:
        check.fail("Secret %s key %s reads field %r of %s, which is not declared (fields: %s)"
                   % (secret_name, key, prop, remote, ", ".join(sorted(fields[remote]))))
    return dict(key=key, remote_key=remote, property=prop)


def _app_secret(check, app, spec, fields, defaults):
    if not isinstance(spec, dict):
        check.fail("each entry of secrets must be a mapping, got %r" % (spec,))
    unknown = set(spec) - {"name", "type", "data", "extract", "template", "merge_keys", "refresh_interval",
                           "creation_policy", "deletion_policy", "consumers"}
    if unknown:
        check.fail("Secret %s: unknown setting(s) %s" % (spec.get("name"), ", ".join(sorted(unknown))))
    name = check.name(spec.get("name"), "Secret name", _DNS_SUBDOMAIN)
    data = [_secret_ref(check, app, ref, fields, name, check_key(check, name, key))
            for key, ref in sorted((spec.get("data") or {}).items())]
    extract = []
    for ref in spec.get("extract") or []:
        remote = _own_path(check, app, ref, "Secret %s extract" % name)
        if remote not in fields:
            check.fail("Secret %s extracts %s, which seed declares no field of" % (name, remote))
        extract.append(remote)
    if not data and not extract:
        check.fail("Secret %s maps nothing: give data (key: {from, property}) or extract ([vault secret])" % name)
    template = _secret_template(check, spec, name, data, extract, fields)
    refresh = check.duration(spec.get("refresh_interval", defaults["refresh_interval"]),
                             "Secret %s refresh_interval" % name)
    creation = check.choice(spec.get("creation_policy", defaults["creation_policy"]), CREATION_POLICIES,
                            "Secret %s creation_policy" % name)
    deletion = check.choice(spec.get("deletion_policy", defaults["deletion_policy"]), DELETION_POLICIES,
                            "Secret %s deletion_policy" % name)
    if deletion == "Delete" and creation != "Owner":
        # ESO's webhook refuses it: only a Secret ESO owns may be deleted with the ExternalSecret
        check.fail("Secret %s: deletion_policy Delete needs creation_policy Owner (got %s)" % (name, creation))
    return dict(
        name=name,
        type=check.choice(spec.get("type", "Opaque"), SECRET_TYPES, "Secret %s type" % name),
        data=data, extract=extract, template=template,
        merge_keys=bool(spec.get("merge_keys", False)),
        refresh_interval=refresh, refresh_seconds=int(go_duration_seconds(refresh)),
        creation_policy=creation, deletion_policy=deletion,
        consumers=_consumers(check, spec.get("consumers"), "Secret %s" % name))


def _secret_template(check, spec, name, data, extract, fields):
    """The Secret's template: every key valid, reading only keys the Secret maps (data keys, extracted fields)."""
    template = spec.get("template") or {}
    if not isinstance(template, dict):
        check.fail("Secret %s: template must map keys to Go templates" % name)
    available = set(item["key"] for item in data)
    for remote in extract:
        available.update(fields[remote])
    for out_key, text in sorted(template.items()):
        check_key(check, name, out_key)
        missing = sorted(template_keys(str(text)) - available)
        if missing:
            check.fail("Secret %s template %s reads %s, which the Secret does not map (mapped: %s)"
                       % (name, out_key, ", ".join(missing), ", ".join(sorted(available))))
    return dict((k, str(v)) for k, v in template.items())


def check_key(check, secret_name, key):
    if not isinstance(key, str) or not _SECRET_KEY.match(key):
        check.fail("Secret %s key %r must be letters, digits, '-', '_' or '.'" % (secret_name, key))
    return key


def _network_rules(check, rules, what):
    out = []
    for rule in rules or []:
        if not isinstance(rule, dict) or set(rule) - {"namespace", "cidr", "ports"} or \
                len([k for k in ("namespace", "cidr") if rule.get(k)]) != 1:
            check.fail("network.%s entries need exactly one of namespace or cidr, and ports; got %r" % (what, rule))
        ports = rule.get("ports") or []
        if not ports or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
            check.fail("network.%s entry %r needs ports (integers 1-65535)" % (what, rule))
        if rule.get("namespace"):
            check.name(rule["namespace"], "network.%s namespace" % what)
        out.append(dict(namespace=rule.get("namespace"), cidr=rule.get("cidr"), ports=list(ports)))
    return out


def load_workloads(data_dir, env):
    """The apps of ``env`` as the Kubernetes side needs them, every reference checked before anything renders.

    Returns ``{environment, kv, auth_mount, audience, store_name, eso, backup, apps: [...], database_mount}``; each
    app carries its namespace, service account, Vault role and policy, operator group, network rules, rotation
    windows, ``secrets`` (one ExternalSecret each: data refs with remote key and property, template, intervals,
    policies, consumers) and ``database`` (its database roles from ``load_databases``: one VaultDynamicSecret and
    ExternalSecret each). Errors name the file and the app.
    """
    where = environment_file(data_dir, env)
    data = load_environment(data_dir, env)
    common = _yaml(os.path.join(data_dir, "common.yml"))
    cadence = dict(common.get("rotation_cadence") or {})
    defaults = dict(WORKLOAD_DEFAULTS)
    defaults.update(data.get("workloads") or {})
    fields = seed_fields(data_dir, env)
    databases = load_databases(data_dir, env)
    env_check = _AppChecker(where, "(workloads defaults)")
    env_check.duration(defaults["refresh_interval"], "workloads.refresh_interval")
    env_check.name(defaults["store_name"], "workloads.store_name", _DNS_SUBDOMAIN)
    apps, namespaces, secret_names = [], {}, {}
    for app in data.get("apps") or []:
        apps.append(_workload_app(_AppChecker(where, app.get("name")), app, env, fields, defaults, cadence, databases,
                                  namespaces, secret_names))
    eso = data.get("eso") or {}
    if eso and (eso.get("namespace") in namespaces):
        _AppChecker(where, namespaces[eso["namespace"]]).fail(
            "namespace %s is ESO's: apps need namespaces of their own" % eso["namespace"])
    k8s = data["kubernetes"]
    return dict(environment=env, kv=data["kv"]["path"], auth_mount=k8s["path"], audience=k8s.get("audience") or "vault",
                store_name=defaults["store_name"], operator_group=defaults["operator_group"],
                eso=dict(namespace=eso.get("namespace", "external-secrets"),
                         service_account=eso.get("service_account", "external-secrets")),
                backup=dict(data.get("backup") or {}), rotation_job=_rotation_job(where, data.get("rotation"), namespaces),
                default_rotation=str(cadence.get("default", "")), apps=apps,
                database_mount=(databases or {}).get("mount"))


def _workload_app(check, app, env, fields, defaults, cadence, databases, namespaces, secret_names):
    """One app of ``load_workloads``: its namespace (one per app), Secrets (unique per namespace), rotation, network."""
    name = check.name(app.get("name"), "name")
    namespace = check.name(app.get("namespace", name), "namespace")
    if namespace in namespaces:
        check.fail("namespace %s is already app %s's: one namespace per app (its SecretStore logs in as one app)"
                   % (namespace, namespaces[namespace]))
    namespaces[namespace] = name
    taken = secret_names.setdefault(namespace, set())
    secrets = [_app_secret(check, name, spec, fields, defaults) for spec in app.get("secrets") or []]
    database = [dict(role) for role in (databases or {}).get("roles") or [] if role["app"] == name]
    for secret_name, what in [(s["name"], "") for s in secrets] + [(r["secret"], " (database role %s)" % r["name"])
                                                                   for r in database]:
        if secret_name in taken:
            check.fail("Secret %s is declared twice in namespace %s%s" % (secret_name, namespace, what))
        taken.add(secret_name)
    network = app.get("network") or {}
    return dict(
        name=name, namespace=namespace,
        service_account=check.name(app.get("service_account", name), "service_account", _DNS_SUBDOMAIN),
        role=name, policy="%s-app-%s" % (env, name),
        operator_group=app.get("operator_group", defaults["operator_group"]) or "",
        aws_secrets=bool(app.get("aws_secrets", False)),
        egress=_network_rules(check, network.get("egress"), "egress"),
        ingress=_network_rules(check, network.get("ingress"), "ingress"),
        rotation=_app_rotation(check, name, app, fields, cadence), secrets=secrets, database=database)


def _app_rotation(check, name, app, fields, cadence):
    """``{remote path: {kind, window}}`` of the app's ``rotation:``, each kind one of common.yml's cadences."""
    rotation = {}
    for vault_secret, kind in sorted((app.get("rotation") or {}).items()):
        remote = _own_path(check, name, vault_secret, "rotation")
        if remote not in fields:
            check.fail("rotation names %s, which seed declares no field of" % remote)
        if kind not in cadence:
            check.fail("rotation kind %r of %s is not in common.yml rotation_cadence (%s)"
                       % (kind, remote, ", ".join(sorted(cadence))))
        rotation[remote] = dict(kind=kind, window=str(cadence[kind]))
    return rotation


def _rotation_job(where, job, app_namespaces):
    """The in-cluster rotation job's identity and schedule (``rotation:``), or None when none is declared."""
    if not job:
        return None
    check = _AppChecker(where, "(rotation job)")
    check.name(job.get("namespace"), "rotation.namespace")
    if job["namespace"] in app_namespaces:
        check.fail("rotation.namespace %s is app %s's: the job needs a namespace of its own"
                   % (job["namespace"], app_namespaces[job["namespace"]]))
    check.name(job.get("service_account"), "rotation.service_account", _DNS_SUBDOMAIN)
    if len(str(job.get("schedule", "")).split()) != 5:
        check.fail("rotation.schedule %r must be a five-field cron expression" % job.get("schedule"))
    return dict(namespace=job["namespace"], service_account=job["service_account"], role=ROTATOR_ROLE,
                schedule=str(job["schedule"]))


def consumers_of(declared, paths):
    """What consumes the Vault secrets ``paths`` (``apps/<app>/<name>``, with or without the mount).

    Returns ``{"external_secrets": ["ns/name", ...], "workloads": [{namespace, kind, name, secrets}]}``: the
    ExternalSecrets that read any of them and the workloads that consume those Secrets, in declaration order.
    """
    wanted = set(p.split("/", 1)[1] if not p.startswith("apps/") and "/" in p else p for p in paths)
    external, workloads, seen = [], [], {}
    for app in declared["apps"]:
        for secret in app["secrets"]:
            remotes = set(ref["remote_key"] for ref in secret["data"]) | set(secret["extract"])
            if not remotes & wanted:
                continue
            external.append("%s/%s" % (app["namespace"], secret["name"]))
            for consumer in secret["consumers"]:
                key = (app["namespace"], consumer["kind"], consumer["name"])
                if key not in seen:
                    seen[key] = dict(namespace=app["namespace"], kind=consumer["kind"], name=consumer["name"],
                                     secrets=[])
                    workloads.append(seen[key])
                seen[key]["secrets"].append(secret["name"])
    return {"external_secrets": external, "workloads": workloads}


def rotation_plan(data_dir, env, generate):
    """Group the seed's generated fields (``generate``: ``{path: {field: policy}}``) by rotation window.

    Returns ``[{"window": "30d", "kinds": [...], "secrets": {path: {field: policy}}}]`` sorted by window; a path
    no app declares a rotation kind for takes ``rotation_cadence.default``.
    """
    workloads = load_workloads(data_dir, env)
    windows = {}
    for app in workloads["apps"]:
        for remote, rotation in app["rotation"].items():
            windows[remote] = rotation
    groups = {}
    for path, field_policies in sorted((generate or {}).items()):
        rotation = windows.get(path) or dict(kind="default", window=workloads["default_rotation"])
        if not rotation["window"]:
            raise VaultDataError("%s has no rotation kind and common.yml rotation_cadence has no default" % path)
        group = groups.setdefault(rotation["window"], dict(window=rotation["window"], kinds=set(), secrets={}))
        group["kinds"].add(rotation["kind"])
        group["secrets"][path] = dict(field_policies)
    return [dict(groups[window], kinds=sorted(groups[window]["kinds"])) for window in sorted(groups)]


# --- deployment facts: one place for what the stacks, the inventories and the roles must agree on ----------------
_DEPLOYMENT_SCHEMA = {
    "cluster_name": str, "region": str,
    "vault": {"hostname": str, "port": int, "ca_cert_file": str, "audit_file_path": str},
    "init_store": {"secret_name": str, "kms_alias": str},
    "backup": {"bucket": str, "prefix": str, "kms_alias": str, "schedule": str, "retention_days": int,
               "noncurrent_retention_days": int, "object_lock_days": int, "replica_region": str},
}
_OPTIONAL_EMPTY = ("audit_file_path", "replica_region", "prefix")


def _check_facts(where, schema, value, path):
    if not isinstance(value, dict):
        raise VaultDataError("%s: %s must be a mapping" % (where, path))
    unknown = sorted(set(value) - set(schema))
    if unknown:
        raise VaultDataError("%s: %s has unknown key(s) %s" % (where, path, ", ".join(unknown)))
    for key, kind in schema.items():
        here = "%s.%s" % (path, key)
        if key not in value:
            raise VaultDataError("%s: %s is required" % (where, here))
        if isinstance(kind, dict):
            _check_facts(where, kind, value[key], here)
        elif not isinstance(value[key], kind) or isinstance(value[key], bool):
            raise VaultDataError("%s: %s must be a %s, got %r" % (where, here, kind.__name__, value[key]))
        elif kind is str and not value[key] and key not in _OPTIONAL_EMPTY:
            raise VaultDataError("%s: %s must not be empty" % (where, here))


def load_deployment(data_dir, env):
    """The ``deployment`` facts of ``env`` (checked), with what is derived from them.

    Adds ``vault.address`` (``https://<hostname>:<port>``) and ``kms_key_id`` (``alias/<kms_alias>``) to
    ``init_store`` and ``backup``, the forms the modules take.
    """
    where = environment_file(data_dir, env)
    facts = load_environment(data_dir, env).get("deployment")
    if facts is None:
        raise VaultDataError("%s: deployment is required (cluster, Vault endpoint, init store, backups)" % where)
    _check_facts(where, _DEPLOYMENT_SCHEMA, facts, "deployment")
    backup = facts["backup"]
    if backup["prefix"] and not backup["prefix"].endswith("/"):
        raise VaultDataError("%s: deployment.backup.prefix %r must end with /" % (where, backup["prefix"]))
    if backup["object_lock_days"] < 0 or backup["object_lock_days"] > backup["retention_days"]:
        raise VaultDataError("%s: deployment.backup.object_lock_days must be between 0 and retention_days (%d): a "
                             "locked snapshot outliving its expiry cannot be deleted" % (where, backup["retention_days"]))
    if backup["replica_region"] == facts["region"]:
        raise VaultDataError("%s: deployment.backup.replica_region must differ from region %s" % (where, facts["region"]))
    out = dict((key, dict(value) if isinstance(value, dict) else value) for key, value in facts.items())
    out["vault"]["address"] = "https://%s:%d" % (facts["vault"]["hostname"], facts["vault"]["port"])
    for store in ("init_store", "backup"):
        out[store]["kms_key_id"] = "alias/" + facts[store]["kms_alias"]
    return out


# --- database credentials: connections, roles per app, what reaches the pods -------------------------------------
# ``database:`` in environments/<env>.yml declares the database secrets engine of the environment and its
# connections; each app names the roles it may use (apps[].database). The admin credential a connection starts with
# is never data: ``admin_secret`` names the Secrets Manager secret that holds it (pulumi/vault reads it), and the
# inventory may point configure.yml at an ansible-vault file instead (configure_database_admin).
DATABASE_PLUGINS = ("postgresql-database-plugin",)
DATABASE_TLS_MODES = ("disable", "require", "verify-ca", "verify-full")
_DATABASE_KEYS = {"path", "description", "default_ttl", "max_ttl", "root_rotation", "connections"}
_CONNECTION_KEYS = {"name", "plugin", "host", "port", "database", "schema", "username", "admin_secret", "tls",
                    "allowed_roles", "max_open_connections"}
_APP_ROLE_KEYS = {"role", "connection", "access", "default_ttl", "max_ttl", "secret", "refresh_interval", "template",
                  "consumers"}
_DB_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
# The Kubernetes Secret a VaultDynamicSecret fills: the keys Vault's creds endpoint answers.
DATABASE_SECRET_KEYS = ("password", "username")
# A refresh at two thirds of the lease: the pod's Secret holds a credential with a third of its TTL left at worst.
DATABASE_REFRESH_FRACTION = 2.0 / 3.0


def _seconds(where, value, what):
    try:
        seconds = _parse_duration_local(value)
    except ValueError:
        seconds = None
    if seconds is None or seconds <= 0:
        raise VaultDataError("%s: %s %r is not a duration such as 30m, 1h or 7d" % (where, what, value))
    return int(seconds)


def _parse_duration_local(value):
    """Vault durations (``30m``, ``1h30m``, ``7d``) or seconds; this file is also loaded outside the collection."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if re.match(r"^\d+$", text):
        return float(text)
    parts = re.findall(r"(\d+)([smhd])", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(text)
    return float(sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts))


def _go_duration_text(seconds):
    """``2400`` -> ``40m``; the form ESO's refreshInterval takes (no days)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join("%d%s" % (n, u) for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def database_statements(data_dir):
    """``common.yml`` ``database_statements``: ``{access name: {creation: [...], revocation: [...], ...}}``."""
    common = _yaml(os.path.join(data_dir, "common.yml"))
    where = os.path.join(data_dir, "common.yml")
    statements = common.get("database_statements") or {}
    if not isinstance(statements, dict):
        raise VaultDataError("%s: database_statements must map an access name to its statements" % where)
    for name, spec in statements.items():
        if not isinstance(spec, dict) or not spec.get("creation") or set(spec) - {"creation", "revocation",
                                                                                  "renew", "rollback"}:
            raise VaultDataError("%s: database_statements.%s needs creation (a list of SQL statements) and may have "
                                 "revocation, renew, rollback" % (where, name))
        for key, value in spec.items():
            if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
                raise VaultDataError("%s: database_statements.%s.%s must be a list of SQL statements" % (where, name, key))
    return statements


def _connection_url(conn):
    query = "sslmode=%s" % conn["tls"]["mode"]
    if conn["tls"].get("ca_file"):
        query += "&sslrootcert=%s" % conn["tls"]["ca_file"]
    return "postgresql://{{username}}:{{password}}@%s:%d/%s?%s" % (conn["host"], conn["port"], conn["database"], query)


def _database_connection(where, spec, seen):
    if not isinstance(spec, dict):
        raise VaultDataError("%s: each database.connections entry must be a mapping, got %r" % (where, spec))
    name = spec.get("name")
    here = "%s: database connection %s" % (where, name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise VaultDataError("%s: database connection name %r must be lower-case letters, digits and '-'" % (where, name))
    if name in seen:
        raise VaultDataError("%s is declared twice" % here)
    unknown = set(spec) - _CONNECTION_KEYS
    if unknown:
        raise VaultDataError("%s: unknown setting(s) %s" % (here, ", ".join(sorted(unknown))))
    plugin = spec.get("plugin", "postgresql-database-plugin")
    if plugin not in DATABASE_PLUGINS:
        raise VaultDataError("%s: plugin %r is not one of %s" % (here, plugin, ", ".join(DATABASE_PLUGINS)))
    host, port = spec.get("host"), spec.get("port", 5432)
    if not isinstance(host, str) or not _HOST.match(host):
        raise VaultDataError("%s: host %r must be a host name or IP address" % (here, host))
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise VaultDataError("%s: port %r must be an integer 1-65535" % (here, port))
    for key in ("database", "username"):
        if not isinstance(spec.get(key), str) or not _DB_IDENT.match(spec[key]):
            raise VaultDataError("%s: %s %r must be a PostgreSQL identifier (letters, digits, '_', '-')"
                                 % (here, key, spec.get(key)))
    schema = spec.get("schema", "public")
    if not isinstance(schema, str) or not _DB_IDENT.match(schema):
        raise VaultDataError("%s: schema %r must be a PostgreSQL identifier" % (here, schema))
    tls = spec.get("tls") or {}
    if not isinstance(tls, dict) or set(tls) - {"mode", "ca_file"} or tls.get("mode") not in DATABASE_TLS_MODES:
        raise VaultDataError("%s: tls must be {mode: %s[, ca_file: <path on the Vault servers>]}, got %r"
                             % (here, "|".join(DATABASE_TLS_MODES), spec.get("tls")))
    if tls["mode"] in ("verify-ca", "verify-full") and not tls.get("ca_file"):
        raise VaultDataError("%s: tls.mode %s needs tls.ca_file (the CA on the Vault servers)" % (here, tls["mode"]))
    roles = spec.get("allowed_roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and _NAME.match(r) for r in roles):
        raise VaultDataError("%s: allowed_roles must list the Vault roles (lower-case names) that may use it" % here)
    admin_secret = spec.get("admin_secret", "")
    if not isinstance(admin_secret, str):
        raise VaultDataError("%s: admin_secret must name a Secrets Manager secret (not hold a credential)" % here)
    conn = dict(name=name, plugin=plugin, host=host, port=port, database=spec["database"], schema=schema,
                username=spec["username"], admin_secret=admin_secret,
                tls=dict(mode=tls["mode"], ca_file=tls.get("ca_file", "")), allowed_roles=sorted(set(roles)))
    if spec.get("max_open_connections") is not None:
        if not isinstance(spec["max_open_connections"], int) or spec["max_open_connections"] < 1:
            raise VaultDataError("%s: max_open_connections must be a positive integer" % here)
        conn["max_open_connections"] = spec["max_open_connections"]
    conn["connection_url"] = _connection_url(conn)
    return conn


def _statements(conn, templates, access, where):
    variables = dict(database=conn["database"], schema=conn["schema"], username=conn["username"])
    out = {}
    for key in ("creation", "revocation", "renew", "rollback"):
        out[key] = [render(text, variables, "%s (database_statements.%s.%s)" % (where, access, key))
                    for text in templates[access].get(key) or []]
    return out


def load_databases(data_dir, env):
    """The database secrets engine of ``env``, or None when ``environments/<env>.yml`` declares no ``database``.

    Returns ``{environment, mount, description, default_ttl, max_ttl, root_rotation, connections, roles}``: TTLs in
    seconds; each connection with its ``connection_url`` (``{{username}}``/``{{password}}`` left to Vault), its
    ``admin_secret`` reference and ``allowed_roles``; each role with its app, connection, statements (rendered from
    ``common.yml`` ``database_statements`` with ``${database}``, ``${schema}``, ``${username}``), TTLs, lease
    prefix and the Kubernetes Secret it is delivered as. Every reference is checked: a role no connection allows,
    a role two apps claim, a TTL above the mount's maximum, an unknown access name.
    """
    where = environment_file(data_dir, env)
    data = load_environment(data_dir, env)
    block = data.get("database")
    app_roles = [(app.get("name"), spec) for app in data.get("apps") or [] for spec in app.get("database") or []]
    if not block:
        if app_roles:
            raise VaultDataError("%s: app %s names database role %r, but the environment declares no database"
                                 % (where, app_roles[0][0], (app_roles[0][1] or {}).get("role")))
        return None
    engine = _database_engine(where, block)
    connections, allowed_by = _database_connections(where, block)
    templates = database_statements(data_dir)
    roles, owners, secret_names = [], {}, {}
    for app_name, spec in app_roles:
        check = _AppChecker(where, app_name)
        role = _database_role(check, spec, engine, allowed_by, templates, owners, secret_names)
        conn = connections[role["connection"]]
        statements = _statements(conn, templates, role["access"], "%s: database role %s" % (where, role["name"]))
        for kind in ("creation", "revocation", "renew", "rollback"):
            role[kind + "_statements"] = statements[kind]
        roles.append(role)
    return dict(engine, environment=env, connections=[connections[n] for n in sorted(connections)], roles=roles)


def _database_engine(where, block):
    """The ``database`` block's mount settings: mount, description and TTLs in seconds, all checked."""
    if not isinstance(block, dict) or set(block) - _DATABASE_KEYS:
        raise VaultDataError("%s: database has unknown setting(s) %s (known: %s)"
                             % (where, ", ".join(sorted(set(block) - _DATABASE_KEYS)) if isinstance(block, dict)
                                else block, ", ".join(sorted(_DATABASE_KEYS))))
    mount = block.get("path")
    if not isinstance(mount, str) or not _NAME.match(mount):
        raise VaultDataError("%s: database.path %r must be a mount path (lower-case letters, digits, '-')" % (where, mount))
    default_ttl = _seconds(where, block.get("default_ttl", "1h"), "database.default_ttl")
    max_ttl = _seconds(where, block.get("max_ttl", "24h"), "database.max_ttl")
    if default_ttl > max_ttl:
        raise VaultDataError("%s: database.default_ttl (%ss) is above database.max_ttl (%ss)" % (where, default_ttl, max_ttl))
    return dict(mount=mount, description=block.get("description", ""), default_ttl=default_ttl, max_ttl=max_ttl,
                root_rotation=_seconds(where, block.get("root_rotation", "30d"), "database.root_rotation"))


def _database_connections(where, block):
    """``({name: connection}, {role: connection name})``: at least one connection, each role on exactly one."""
    connections = {}
    for spec in block.get("connections") or []:
        conn = _database_connection(where, spec, connections)
        connections[conn["name"]] = conn
    if not connections:
        raise VaultDataError("%s: database declares no connection (database.connections)" % where)
    allowed_by = {}
    for conn in connections.values():
        for role in conn["allowed_roles"]:
            if role in allowed_by:
                raise VaultDataError("%s: role %s is allowed on connections %s and %s: a role uses one connection"
                                     % (where, role, allowed_by[role], conn["name"]))
            allowed_by[role] = conn["name"]
    return connections, allowed_by


def _database_role(check, spec, engine, allowed_by, templates, owners, secret_names):
    """One app's database role entry, checked against the connections, the statements and the mount's TTLs."""
    if not isinstance(spec, dict) or set(spec) - _APP_ROLE_KEYS:
        check.fail("each database entry must be a mapping of %s, got %r" % (", ".join(sorted(_APP_ROLE_KEYS)), spec))
    name = spec.get("role")
    if name not in allowed_by:
        check.fail("database role %r is not declared: no connection lists it in allowed_roles (declared: %s)"
                   % (name, ", ".join(sorted(allowed_by)) or "none"))
    if name in owners:
        check.fail("database role %s is already app %s's: each role belongs to one app" % (name, owners[name]))
    owners[name] = check.app
    conn_name = spec.get("connection", allowed_by[name])
    if conn_name != allowed_by[name]:
        check.fail("database role %s names connection %r, but connection %s is the one that allows it"
                   % (name, conn_name, allowed_by[name]))
    access = spec.get("access")
    if access not in templates:
        check.fail("database role %s: access %r is not one of the statements in common.yml database_statements (%s)"
                   % (name, access, ", ".join(sorted(templates))))
    role_default, role_max = _database_role_ttls(check, spec, name, engine)
    secret = check.name(spec.get("secret", "%s-credentials" % name), "database role %s secret" % name, _DNS_SUBDOMAIN)
    if secret in secret_names.get(check.app, ()):
        check.fail("database Secret %s is declared twice" % secret)
    secret_names.setdefault(check.app, set()).add(secret)
    refresh = _database_refresh(check, spec, name, role_default)
    mount = engine["mount"]
    return dict(name=name, app=check.app, connection=allowed_by[name], access=access, default_ttl=role_default,
                max_ttl=role_max, lease_prefix="%s/creds/%s" % (mount, name), creds_path="%s/creds/%s" % (mount, name),
                secret=secret, refresh_interval=refresh, refresh_seconds=int(go_duration_seconds(refresh)),
                template=_database_template(check, spec, name, secret),
                consumers=_consumers(check, spec.get("consumers"), "database role %s" % name))


def _database_role_ttls(check, spec, name, engine):
    """``(default_ttl, max_ttl)`` of a role in seconds: the mount's unless given, never above the mount's maximum."""
    where, max_ttl = check.where, engine["max_ttl"]
    role_default = _seconds(where, spec.get("default_ttl", engine["default_ttl"]),
                            "app %s database role %s default_ttl" % (check.app, name))
    role_max = _seconds(where, spec.get("max_ttl", max_ttl), "app %s database role %s max_ttl" % (check.app, name))
    if role_max > max_ttl:
        check.fail("database role %s: max_ttl %ss is above the mount's max_ttl %ss (database.max_ttl): Vault would "
                   "cut every lease to the mount's maximum; lower the role's max_ttl or raise database.max_ttl"
                   % (name, role_max, max_ttl))
    if role_default > role_max:
        check.fail("database role %s: default_ttl %ss is above its max_ttl %ss" % (name, role_default, role_max))
    return role_default, role_max


def _database_refresh(check, spec, name, role_default):
    """ESO's refresh interval for the role's Secret: given (and shorter than the TTL) or a fraction of the TTL."""
    if "refresh_interval" not in spec:
        return _go_duration_text(max(60, int(role_default * DATABASE_REFRESH_FRACTION) // 60 * 60)
                                 if role_default >= 120 else max(1, int(role_default * DATABASE_REFRESH_FRACTION)))
    refresh = check.duration(spec["refresh_interval"], "database role %s refresh_interval" % name)
    if go_duration_seconds(refresh) >= role_default:
        check.fail("database role %s: refresh_interval %s is not shorter than the credential's default_ttl "
                   "(%ss): the pod's Secret would hold an expired credential" % (name, refresh, role_default))
    return refresh


def _database_template(check, spec, name, secret):
    """The role's Secret template: keys checked, reading only what a database credential has."""
    template = spec.get("template") or {}
    if not isinstance(template, dict):
        check.fail("database role %s: template must map keys to Go templates" % name)
    for out_key, text in sorted(template.items()):
        check_key(check, secret, out_key)
        missing = sorted(template_keys(str(text)) - set(DATABASE_SECRET_KEYS))
        if missing:
            check.fail("database role %s template %s reads %s; a database credential has %s"
                       % (name, out_key, ", ".join(missing), ", ".join(DATABASE_SECRET_KEYS)))
    return dict((k, str(v)) for k, v in template.items())


def _consumers(check, entries, what):
    """``[{kind, name}]`` of the workloads (``Kind/name`` entries) that read ``what``'s Secret."""
    consumers = []
    for consumer in entries or []:
        kind, workload = (str(consumer).split("/", 1) + [""])[:2]
        check.choice(kind, WORKLOAD_KINDS, "%s consumer kind" % what)
        consumers.append(dict(kind=kind, name=check.name(workload, "%s consumer name" % what, _DNS_SUBDOMAIN)))
    return consumers


def database_roles_of(databases, connection):
    """The roles of ``databases`` (``load_databases``) that use ``connection``, as vault_database_roles takes them."""
    return [dict(name=role["name"], db_name=role["connection"], creation_statements=role["creation_statements"],
                 revocation_statements=role["revocation_statements"], renew_statements=role["renew_statements"],
                 rollback_statements=role["rollback_statements"], default_ttl=role["default_ttl"],
                 max_ttl=role["max_ttl"])
            for role in databases["roles"] if role["connection"] == connection]


def database_leases_of_app(databases, app):
    """``{"lease_prefixes": [...], "connections": [...]}`` of ``app``'s database roles (leak response)."""
    roles = [role for role in (databases or {}).get("roles") or [] if role["app"] == app]
    return {"lease_prefixes": [role["lease_prefix"] for role in roles],
            "connections": sorted(set(role["connection"] for role in roles))}
