#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_audit
short_description: Enable, change or disable an audit device (file, socket, syslog)
version_added: "0.1.0"
description:
  - Reads C(GET /v1/sys/audit) and compares the device at O(path) with the wanted O(type), O(description), O(local)
    and every entry of O(options) (values are compared as Vault stores them, so V(true) equals C(1) for boolean options
    and C(0600) equals C(600) for C(mode)). Options that are set on the device but not given here count as
    a difference.
  - V(state=present) enables a missing device with C(PUT /v1/sys/audit/<path>). Vault cannot change an audit device
    in place, so a device that differs is disabled and enabled again (O(recreate=true), with a warning) or the task
    fails (O(recreate=false)). If re-enabling fails, the old device is enabled again with its old settings.
  - V(state=absent) disables the device with C(DELETE /v1/sys/audit/<path>).
  - The option C(log_raw=true) writes every secret, token and password in clear into the audit log; it is refused unless
    O(allow_log_raw=true).
  - "OpenBao (2.7.2 measured; since the fix for CVE-2025-54997) refuses to enable audit devices through the API unless the
    server configuration sets
    C(unsafe_allow_api_audit_creation = true); the recommended way there is an C(audit \"file\" \"<path>\" { ... })
    stanza in the server configuration of every node. This module then still verifies such a declared device
    (a matching one reports C(changed=false)), and says so when a change would need the API."
  - A device declared in the server configuration (listed by C(GET /v1/sys/config/state/sanitized)) that would have
    to change or go makes the task fail in check mode too, since the API cannot change it.
  - Check mode cannot know whether the server refuses API-created devices; a real run then fails with what to do.
  - A relative C(file_path) is resolved by each server against its own working directory (OpenBao accepts it).
    Every node opens the file when the device is enabled, and a standby that serves a read logs it into its own file,
    so the path must be valid and writable on every node; prefer an absolute path on a dedicated volume.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_status_info
  - name: Audit devices (OpenBao)
    description: Device types, their options, and the HMAC of sensitive values.
    link: https://openbao.org/docs/audit/
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the audit devices and reports whether the device would be enabled, recreated or disabled.
  diff_mode:
    support: full
    description: Shows the device (type, description, local, options) before and after.
options:
  path:
    description: Path of the audit device, for example C(file) or C(audit/primary) (leading and trailing C(/) ignored).
    type: str
    required: true
  state:
    description: V(present) enables the device as described, V(absent) disables it.
    type: str
    choices: [present, absent]
    default: present
  type:
    description: Audit device type. Required with O(state=present).
    type: str
    choices: [file, socket, syslog]
  description:
    description: Human-friendly description of the device.
    type: str
    default: ""
  options:
    description:
      - Options of the device, as documented for its type (for example C(file_path), C(mode), C(format), C(prefix),
        C(hmac_accessor), C(elide_list_responses) for V(file); C(address), C(socket_type), C(write_timeout) for
        V(socket); C(facility), C(tag) for V(syslog)).
      - Values are sent as strings (booleans as C(true)/C(false)).
      - O(type=file) needs C(file_path) (a path, or C(stdout) or C(discard)).
    type: dict
    default: {}
  local:
    description: Mark the device local-only (not replicated; Vault Enterprise replication).
    type: bool
    default: false
  recreate:
    description:
      - When the existing device differs, disable and re-enable it. Requests in the short gap are not logged by this
        device (others still log them) and the device gets a new HMAC salt, so older hashes cannot be compared with
        new ones.
      - With V(false) the task fails on a difference and changes nothing.
    type: bool
    default: true
  allow_log_raw:
    description: Allow C(log_raw=true) in O(options), which writes secrets in clear into the audit log.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A file audit device on a volume every node mounts at the same path
  heracles.secrets.vault_audit:
    path: file
    type: file
    description: primary audit log
    options:
      file_path: /vault/audit/audit.log
      mode: "0600"

- name: A second device, so a full disk on one does not block Vault
  heracles.secrets.vault_audit:
    path: syslog
    type: syslog
    options:
      facility: AUTH
      tag: vault

- name: Remove an old device
  heracles.secrets.vault_audit:
    path: old-file
    state: absent
"""

RETURN = r"""
device:
  description: The device after the task (as Vault reports it), or null when absent.
  returned: always
  type: dict
  sample:
    path: file/
    type: file
    description: primary audit log
    local: false
    options:
      file_path: /vault/audit/audit.log
      mode: "0600"
differences:
  description: Names of the fields that differed from the wanted device.
  returned: always
  type: list
  elements: str
  sample: [description, options.mode]
recreated:
  description: The existing device was (or in check mode would be) disabled and enabled again.
  returned: always
  type: bool
"""

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

BOOL_OPTIONS = ("log_raw", "hmac_accessor", "elide_list_responses", "fallback")
_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")
API_CREATION_REFUSED = "cannot enable audit device via api"
CONFIG_MANAGED = "configuration-managed"
DECLARATIVE_HINT = ("This OpenBao server refuses API-created audit devices. Declare the device in the server "
                    "configuration of every node (audit \"<type>\" \"<path>\" { options { ... } }) and reload it "
                    "(SIGHUP), or, if you accept the risk, set unsafe_allow_api_audit_creation = true there")


def audit_path(path):
    return path.strip("/")


def stringify(value):
    """Audit options are a string map; send booleans the way Vault writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _bool(text):
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def option_equal(key, have, want):
    """Compare one option as Vault interprets it (``ParseBool`` for flags, octal for mode)."""
    have, want = stringify(have), stringify(want)
    if have == want:
        return True
    if key in BOOL_OPTIONS and _bool(have) is not None:
        return _bool(have) == _bool(want)
    if key == "mode":
        try:
            return int(have, 8) == int(want, 8)
        except ValueError:
            return False
    return False


def differences(current, wanted):
    """Field names where the existing device differs from ``wanted``."""
    diff = []
    for key in ("type", "description", "local"):
        if current.get(key) != wanted[key]:
            diff.append(key)
    have = current.get("options") or {}
    want = wanted["options"]
    for key in sorted(set(have) | set(want)):
        if key not in have or key not in want or not option_equal(key, have[key], want[key]):
            diff.append("options.%s" % key)
    return diff


def read_devices(client):
    """``GET /v1/sys/audit``: enabled devices keyed by path without slashes."""
    data = api.list_audit_devices(client)
    devices = {}
    for key, device in (data or {}).items():
        if isinstance(device, dict) and "type" in device:
            devices[audit_path(key)] = dict(path=device.get("path") or key, type=device.get("type"),
                                            description=device.get("description") or "",
                                            local=bool(device.get("local")), options=dict(device.get("options") or {}))
    return devices


def read_declared(client):
    """Paths of devices declared in the server configuration (OpenBao ``GET sys/config/state/sanitized``).

    Best effort: an empty set when the endpoint is missing (HashiCorp Vault lists no audits there) or not readable.
    """
    try:
        data = api.read_sanitized_configuration(client)
    except Exception:  # noqa: BLE001 - informational only
        return set()
    return set(audit_path(a.get("path") or "") for a in (data or {}).get("audits") or [] if isinstance(a, dict))


def enable_device(client, path, device):
    """``PUT /v1/sys/audit/<path>``."""
    api.enable_audit_device(client, path, device["type"], device["description"], device["local"], device["options"])


def disable_device(client, path):
    """``DELETE /v1/sys/audit/<path>``."""
    api.disable_audit_device(client, path)


def _server_text(exc):
    return " ".join(str(e) for e in (getattr(exc, "errors", None) or [str(exc)])).lower()


def validate(module, wanted):
    """Refuse bad input before anything is sent."""
    opts = wanted["options"]
    if _bool(opts.get("log_raw", "false")) is not False and not module.params["allow_log_raw"]:
        module.fail_json(msg="options.log_raw=%s would write every secret, token and password in clear into the audit "
                             "log. Remove it, or set allow_log_raw=true if that is really wanted (short-term "
                             "debugging on a protected log); nothing was changed" % opts.get("log_raw"))
    if wanted["type"] == "file" and not opts.get("file_path"):
        module.fail_json(msg="A file audit device needs options.file_path (an absolute path valid on every node, or "
                             "stdout or discard); nothing was changed")
    if wanted["type"] == "socket" and not opts.get("address"):
        module.fail_json(msg="A socket audit device needs options.address (host:port, or a socket path with "
                             "socket_type=unix); nothing was changed")


def fail_write(module, exc, what, **result):
    text = _server_text(exc)
    if API_CREATION_REFUSED in text:
        module.fail_json(msg="%s: %s. %s" % (what, text, DECLARATIVE_HINT), **result)
    if CONFIG_MANAGED in text:
        module.fail_json(msg="%s: the device is declared in the server configuration (%s). Change or remove its audit "
                             "stanza in the configuration of every node and reload the servers (SIGHUP)"
                         % (what, text), **result)
    module.fail_from(exc, what, **result)


def wanted_device(module):
    """(path, wanted device or None for state=absent), refused before any request when it is unsafe or incomplete."""
    p = module.params
    path = audit_path(p["path"])
    if not path:
        module.fail_json(msg="path must name the audit device (for example file); nothing was changed")
    wanted = None
    if p["state"] == "present":
        wanted = dict(type=p["type"], description=p["description"] or "", local=p["local"],
                      options=dict((k, stringify(v)) for k, v in (p["options"] or {}).items()))
        validate(module, wanted)
    return path, wanted


def refuse_declared(module, client, path, current, diffs):
    """A device declared in the server configuration cannot be disabled or changed through the API: fail early."""
    absent = module.params["state"] == "absent"
    if current is not None and (diffs or absent) and path in read_declared(client):
        module.fail_json(msg="Audit device %s is declared in the server configuration, so the API cannot %s it. "
                             "Change or remove its audit stanza in the configuration of every node and reload the "
                             "servers (SIGHUP); nothing was changed"
                             % (path, "disable" if absent else "change (%s)" % ", ".join(diffs)),
                         differences=diffs, device=current, **module.endpoint_info())


def ensure_absent(module, client, path, current):
    """Disable the device if it is enabled; True when it was (or would be)."""
    if current is None:
        return False
    if not module.check_mode:
        try:
            disable_device(client, path)
        except Exception as exc:  # noqa: BLE001
            fail_write(module, exc, "Disabling audit device %s" % path)
    return True


def ensure_present(module, client, path, current, wanted, diffs):
    """Enable the device, or disable and re-enable it when it differs (recreate=true): (changed, recreated, after)."""
    if current is None:
        if not module.check_mode:
            try:
                enable_device(client, path, wanted)
            except Exception as exc:  # noqa: BLE001
                fail_write(module, exc, "Enabling audit device %s" % path)
        return True, False, dict(wanted, path=path + "/")
    if diffs and not module.params["recreate"]:
        module.fail_json(msg="Audit device %s differs (%s) and Vault cannot change an audit device in place. Set "
                             "recreate=true to disable and re-enable it (a short gap in this device's log, and a "
                             "new HMAC salt), or change it by hand; nothing was changed" % (path, ", ".join(diffs)),
                         differences=diffs, device=current, **module.endpoint_info())
    if not diffs:
        return False, False, current
    module.warn("Audit device %s differs (%s): it is disabled and enabled again. Requests in that short gap are "
                "not logged by this device, and hashes it writes afterwards use a new HMAC salt"
                % (path, ", ".join(diffs)))
    if not module.check_mode:
        recreate_device(module, client, path, current, wanted)
    return True, True, dict(wanted, path=path + "/")


def run_module():
    module = VaultModule(
        argument_spec=dict(
            path=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            type=dict(type="str", choices=["file", "socket", "syslog"]),
            description=dict(type="str", default=""),
            options=dict(type="dict", default={}),
            local=dict(type="bool", default=False),
            recreate=dict(type="bool", default=True),
            allow_log_raw=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ("type",))],
        supports_check_mode=True,
    )
    path, wanted = wanted_device(module)
    client = module.client
    try:
        current = read_devices(client).get(path)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading audit devices (GET sys/audit needs sudo)")
    diffs = differences(current, wanted) if current is not None and wanted else []
    refuse_declared(module, client, path, current, diffs)
    if module.params["state"] == "absent":
        changed, recreated, after = ensure_absent(module, client, path, current), False, None
    else:
        changed, recreated, after = ensure_present(module, client, path, current, wanted, diffs)

    if changed and not module.check_mode:
        try:
            after = read_devices(client).get(path)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Reading audit devices", changed=True)
    result = dict(changed=changed, device=after, differences=diffs, recreated=recreated)
    if module._diff:
        result["diff"] = dict(before=_diffable(current), after=_diffable(after))
    module.exit_ok(**result)


def recreate_device(module, client, path, current, wanted):
    """Disable, then enable with the new settings; on failure put the old device back."""
    try:
        disable_device(client, path)
    except Exception as exc:  # noqa: BLE001
        fail_write(module, exc, "Disabling audit device %s to recreate it" % path)
    try:
        enable_device(client, path, wanted)
    except Exception as exc:  # noqa: BLE001
        restored = True
        try:
            enable_device(client, path, current)
        except Exception:  # noqa: BLE001 - reported below
            restored = False
        what = ("Re-enabling audit device %s with the new settings (the old device was enabled again)" % path
                if restored else
                "Re-enabling audit device %s with the new settings; restoring the old device ALSO failed, so the "
                "device is now missing: enable it again by hand" % path)
        fail_write(module, exc, what, changed=not restored)


def _diffable(device):
    if device is None:
        return {}
    return dict(type=device.get("type"), description=device.get("description"), local=device.get("local"),
                options=dict(device.get("options") or {}))


def main():
    run_module()


if __name__ == "__main__":
    main()
