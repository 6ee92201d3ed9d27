#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_mount
short_description: Enable and tune a secrets engine or an auth method
version_added: "0.1.0"
description:
  - Enables a secrets engine (O(kind=secret), C(sys/mounts)) or auth method (O(kind=auth), C(sys/auth)) at O(path)
    when missing, and tunes it when its description, TTLs, listing visibility or other O(config) differ. TTLs
    compare by value (C(1h) equals C(3600)).
  - For KV version 2 it waits out the upgrade window after enabling (the mount answers 400 for a second or two)
    instead of failing, and manages the mount's C(config) (O(kv_config)), for example C(cas_required).
  - 'A mount of another type at O(path) is never replaced (that would destroy its data): the task fails.'
  - An unknown engine type fails with the server's message and nothing enabled.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_policy
  - module: heracles.secrets.vault_kv_seed
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the mount table and tune settings; reports what would change.
  diff_mode:
    support: full
    description: Type, description, options and tune settings before and after.
options:
  path:
    description: Mount path, for example C(kv-dev) or C(kubernetes-dev).
    type: str
    required: true
  kind:
    description: V(secret) for a secrets engine, V(auth) for an auth method.
    type: str
    default: secret
    choices: [secret, auth]
  type:
    description: Engine or method type (C(kv), C(transit), C(database), C(kubernetes), C(approle), ...). Required with O(state=present).
    type: str
  description:
    description: Human description of the mount.
    type: str
  options:
    description: 'Mount options, for example C({version: "2"}) for KV.'
    type: dict
  config:
    description:
      - Tune settings, for example C(default_lease_ttl), C(max_lease_ttl), C(listing_visibility),
        C(audit_non_hmac_request_keys).
    type: dict
  kv_config:
    description: For KV version 2, the mount's C(config) (C(max_versions), C(cas_required), C(delete_version_after)).
    type: dict
  local:
    description: Local (not replicated) mount; only at creation.
    type: bool
    default: false
  state:
    description: V(absent) disables the mount, destroying its data.
    type: str
    default: present
    choices: [present, absent]
  upgrade_timeout:
    description: Seconds to wait for a new KV version 2 mount to finish its upgrade.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: KV v2 for dev, check-and-set required
  heracles.secrets.vault_mount:
    path: kv-dev
    type: kv
    options: {version: "2"}
    description: dev application secrets
    kv_config: {max_versions: 20, cas_required: true}

- name: Kubernetes auth for the dev cluster
  heracles.secrets.vault_mount:
    path: kubernetes-dev
    kind: auth
    type: kubernetes
    config: {default_lease_ttl: 1h, max_lease_ttl: 4h}
"""

RETURN = r"""
created:
  description: Whether the mount was enabled by this task.
  returned: always
  type: bool
tuned:
  description: Tune settings that were changed.
  returned: always
  type: list
  elements: str
mount:
  description: The mount as read after the task (type, description, options, config).
  returned: when state=present
  type: dict
"""

import time

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

TTL_KEYS = ("default_lease_ttl", "max_lease_ttl")
LIST_KEYS = ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys", "passthrough_request_headers",
             "allowed_response_headers")


# The same calls for the two mount tables: sys/mounts (kind=secret) and sys/auth (kind=auth).
MOUNT_CALLS = dict(
    secret=dict(table=api.list_mounted_secrets_engines, tuning=api.read_mount_configuration,
                enable=api.enable_secrets_engine, tune=api.tune_mount_configuration, disable=api.disable_secrets_engine),
    auth=dict(table=api.list_auth_methods, tuning=api.read_auth_method_tuning,
              enable=api.enable_auth_method, tune=api.tune_auth_method, disable=api.disable_auth_method),
)


def read_mount(client, kind, path):
    """The ``sys/{mounts,auth}`` entry for ``path`` plus its ``.../tune``; None when absent."""
    calls = MOUNT_CALLS[kind]
    entry = calls["table"](client).get(path + "/")
    if entry is None:
        return None
    tune = calls["tuning"](client, path)
    return dict(type=entry.get("type"), description=entry.get("description") or "",
                options=entry.get("options") or {}, local=entry.get("local"), config=tune)


def config_changes(current, wanted):
    changes = {}
    for key, value in (wanted or {}).items():
        have = current.get(key)
        if key in TTL_KEYS:
            if parse_duration(have or 0) != parse_duration(value):
                changes[key] = value
        elif key in LIST_KEYS:
            if sorted(have or []) != sorted(value or []):
                changes[key] = value
        elif have != value:
            changes[key] = value
    return changes


def kv_config_changes(current, wanted):
    changes = {}
    for key, value in (wanted or {}).items():
        have = current.get(key)
        if key == "delete_version_after":
            if parse_duration(have or 0) != parse_duration(value):
                changes[key] = value
        elif have != value:
            changes[key] = value
    return changes


def wait_kv_ready(client, path, timeout):
    """New KV v2 mounts answer 400 "upgrading" for a moment: wait until ``GET <path>/config`` works."""
    deadline = time.time() + timeout
    while True:
        try:
            return api.read_kv_config(client, path)
        except Exception:  # noqa: BLE001 - retried until the deadline
            if time.time() >= deadline:
                raise
            time.sleep(0.25)


def check_input(module):
    """(path, options as strings, whether it is KV version 2), checked before any request."""
    p = module.params
    path = p["path"].strip("/")
    if not path or path.startswith("sys") or path in ("auth", "cubbyhole", "identity"):
        module.fail_json(msg="path %r is reserved or empty; choose another mount path" % p["path"])
    try:
        for key in TTL_KEYS:
            if (p["config"] or {}).get(key) is not None:
                parse_duration(p["config"][key])
    except ValueError as exc:
        module.fail_json(msg="config: %s; nothing was changed" % exc)
    options = dict((k, str(v)) for k, v in (p["options"] or {}).items())
    is_kv2 = p["type"] == "kv" and options.get("version") == "2"
    if p["kv_config"] and not is_kv2:
        module.fail_json(msg="kv_config applies only to type=kv with options.version=2")
    return path, options, is_kv2


def remove_mount(module, client, path, current, before):
    """state=absent: disable the mount if it exists (its data goes with it), then exit."""
    changed = current is not None
    if changed and not module.check_mode:
        try:
            MOUNT_CALLS[module.params["kind"]]["disable"](client, path)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Disabling %s" % path)
    result = dict(created=False, tuned=[], changed=changed)
    if module._diff:
        result["diff"] = dict(before=before or {}, after={})
    module.exit_ok(**result)


def refuse_replacement(module, path, current, options):
    """Fail when the existing mount is of another type or the task would downgrade KV 2 to 1."""
    p = module.params
    if current is not None and current["type"] != p["type"]:
        module.fail_json(msg="%s is already a %s mount, not %s; replacing it would destroy its data. Disable it "
                             "deliberately (state=absent) or choose another path" % (path, current["type"], p["type"]))
    if current is not None and current["type"] == "kv" and current["options"].get("version") == "2" \
            and options.get("version") == "1":
        module.fail_json(msg="%s is KV version 2; Vault cannot downgrade it to version 1" % path)


def tune_changes(p, current, options):
    """The ``.../tune`` body for what differs on an existing mount: description, config, options."""
    tune = {}
    if p["description"] is not None and p["description"] != current["description"]:
        tune["description"] = p["description"]
    tune.update(config_changes(current["config"], p["config"]))
    if options and any(current["options"].get(k) != v for k, v in options.items()):
        tune["options"] = options
    return tune


def ensure_mount(module, client, path, current, tune, options, is_kv2, written):
    """Enable the mount, or tune what differs; wait until a new KV v2 mount answers. True when it changes."""
    p = module.params
    calls = MOUNT_CALLS[p["kind"]]
    if not module.check_mode:
        if current is None:
            calls["enable"](client, p["type"], path, description=p["description"] or "", config=p["config"] or {},
                            options=options, local=p["local"])
            written.append("mount")
        elif tune:
            calls["tune"](client, path, tune)
            written.append("tune")
        if is_kv2 and (current is None or "options" in tune):
            wait_kv_ready(client, path, p["upgrade_timeout"])
    return current is None or bool(tune)


def ensure_kv_config(module, client, path, current, is_kv2, result, written):
    """Write ``kv_config`` to ``<path>/config`` when it differs (adds ``kv_config.<key>`` to tuned). True if so."""
    p = module.params
    if not (is_kv2 and p["kv_config"]):
        return False
    have = {} if (current is None and module.check_mode) else api.read_kv_config(client, path)
    kv_changes = kv_config_changes(have, p["kv_config"])
    if not kv_changes:
        return False
    result["tuned"] = sorted(set(result["tuned"]) | set("kv_config.%s" % k for k in kv_changes))
    if not module.check_mode:
        api.configure_kv(client, path, p["kv_config"])
        written.append("kv_config")
    return True


def planned_diff(p, current, before, options, tune):
    planned = dict(type=p["type"], description=p["description"] if p["description"] is not None
                   else (current or {}).get("description", ""), options=options or (current or {}).get("options", {}))
    planned["tune"] = dict(tune) if current is not None else dict(p["config"] or {})
    return dict(before=before or {}, after=planned)


def run_module():
    module = VaultModule(
        argument_spec=dict(
            path=dict(type="str", required=True),
            kind=dict(type="str", default="secret", choices=["secret", "auth"]),
            type=dict(type="str"),
            description=dict(type="str"),
            options=dict(type="dict"),
            config=dict(type="dict"),
            kv_config=dict(type="dict"),
            local=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            upgrade_timeout=dict(type="int", default=30),
        ),
        required_if=[("state", "present", ("type",))],
        supports_check_mode=True,
    )
    p = module.params
    path, options, is_kv2 = check_input(module)
    client = module.client
    try:
        current = read_mount(client, p["kind"], path)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading mount %s" % path)
    before = current and dict(type=current["type"], description=current["description"], options=current["options"])
    if p["state"] == "absent":
        remove_mount(module, client, path, current, before)
    refuse_replacement(module, path, current, options)

    tune = {} if current is None else tune_changes(p, current, options)
    result = dict(created=current is None, tuned=sorted(tune))
    written = []  # the writes that reached Vault: what `changed` says if a later step fails
    try:
        changed = ensure_mount(module, client, path, current, tune, options, is_kv2, written)
        changed |= ensure_kv_config(module, client, path, current, is_kv2, result, written)
        after = read_mount(client, p["kind"], path) if not module.check_mode else None
    except Exception as exc:  # noqa: BLE001
        result["created"] = result["created"] and bool(written)
        module.fail_from(exc, "Configuring mount %s" % path, changed=bool(written), **result)

    result.update(changed=changed)
    if after is not None:
        result["mount"] = after
    if module._diff:
        result["diff"] = planned_diff(p, current, before, options, tune)
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
