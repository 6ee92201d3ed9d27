# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declared Vault configuration under ``vault/``, turned into the objects to apply.

One loader for both appliers: the ``heracles.secrets.vault_config`` filter (roles/configure)
and the pulumi-vault project import ``load()``, so nothing is declared twice and a test can
prove both produce the same objects.

Layout of ``vault/``::

    common.yml                     password policies, audit devices
    environments/<env>.yml         kv mount, extra mounts, kubernetes auth, apps, eso, backup, developers
    policies/<template>.hcl        ACL policy templates (${env}, ${kv}, ${app})
    password-policies/<name>.hcl   password policies
    seed/<env>.yml                 sample seed data (read by roles/seed, not here)
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
# The Kubernetes auth roles whose names the platform's workloads use (ESO's ClusterSecretStore, the backup CronJob).
ESO_ROLE = "external-secrets"
BACKUP_ROLE = "vault-backup"


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
    """Return ``{password_policies, policies, mounts, auth, audit}`` for ``environments``."""
    if not HAS_YAML:
        raise VaultDataError("PyYAML is required to read the vault/ data")
    if isinstance(environments, str):
        environments = [environments]
    common = _yaml(os.path.join(data_dir, "common.yml"))
    out = dict(password_policies={}, policies={}, mounts=[], auth=[], audit=[])
    for name, rel in sorted((common.get("password_policies") or {}).items()):
        out["password_policies"][name] = _read(os.path.join(data_dir, rel))
    for device in common.get("audit") or []:
        out["audit"].append(dict(path=device["path"], type=device["type"], description=device.get("description", ""),
                                 options=dict(device.get("options") or {})))

    for env in environments:
        data = load_environment(data_dir, env)
        kv, k8s = data["kv"], data["kubernetes"]
        base = dict(env=env, kv=kv["path"])

        def add_policy(name, template, extra=None):
            if not _NAME.match(name):
                raise VaultDataError("policy name %r must be lower-case letters, digits and '-'" % name)
            if name in out["policies"]:
                raise VaultDataError("policy %r is declared twice" % name)
            variables = dict(base)
            variables.update(extra or {})
            out["policies"][name] = _policy(data_dir, template, variables, name)

        out["mounts"].append(dict(path=kv["path"], kind="secret", type="kv", description=kv.get("description", ""),
                                  options={"version": "2"},
                                  kv_config=dict(max_versions=int(kv.get("max_versions", 10)),
                                                 cas_required=bool(kv.get("cas_required", False)))))
        for mount in data.get("mounts") or []:
            out["mounts"].append(dict(path=mount["path"], kind="secret", type=mount["type"],
                                      description=mount.get("description", ""),
                                      options=dict(mount.get("options") or {})))

        roles = []
        common_role = dict(audience=k8s.get("audience"), token_ttl=k8s.get("token_ttl"),
                           token_max_ttl=k8s.get("token_max_ttl"))
        for app in data.get("apps") or []:
            policy = "%s-app-%s" % (env, app["name"])
            add_policy(policy, "app", dict(app=app["name"]))
            role = dict(name=app["name"], bound_service_account_names=[app.get("service_account", app["name"])],
                        bound_service_account_namespaces=[app.get("namespace", app["name"])], policies=[policy])
            role.update(common_role)
            roles.append(role)
        if data.get("eso"):
            add_policy("%s-eso" % env, "eso")
            role = dict(name=ESO_ROLE, bound_service_account_names=[data["eso"]["service_account"]],
                        bound_service_account_namespaces=[data["eso"]["namespace"]], policies=["%s-eso" % env])
            role.update(common_role)
            roles.append(role)
        if data.get("backup"):
            roles.append(_backup_role(environment_file(data_dir, env), data["backup"], env, common_role))
            add_policy("%s-backup" % env, "backup")
        add_policy("%s-devops" % env, "devops")
        add_policy("%s-seeder" % env, "seeder")
        if data.get("developers"):
            add_policy("%s-developer" % env, "developer")
        out["auth"].append(dict(path=k8s["path"], type="kubernetes", environment=env,
                                description=k8s.get("description", ""), roles=roles))
    _check_unique(out["mounts"], "mount")
    _check_unique(out["auth"], "auth mount")
    return out


def environment_file(data_dir, env):
    """``environments/<env>.yml`` under ``data_dir``."""
    return os.path.join(data_dir, "environments", env + ".yml")


def _backup_role(where, backup, env, common_role):
    """The raft snapshot job's role: its own service account, one policy, no default policy, its own short TTLs."""
    for key in ("namespace", "service_account", "token_ttl", "token_max_ttl"):
        if not backup.get(key):
            raise VaultDataError("%s: backup.%s is required (the snapshot job's identity and token lifetime)"
                                 % (where, key))
    role = dict(common_role)
    role.update(name=BACKUP_ROLE, bound_service_account_names=[backup["service_account"]],
                bound_service_account_namespaces=[backup["namespace"]], policies=["%s-backup" % env],
                token_ttl=backup["token_ttl"], token_max_ttl=backup["token_max_ttl"], token_no_default_policy=True)
    return role


def _check_unique(items, what):
    seen = set()
    for item in items:
        if item["path"] in seen:
            raise VaultDataError("%s %r is declared twice" % (what, item["path"]))
        seen.add(item["path"])
