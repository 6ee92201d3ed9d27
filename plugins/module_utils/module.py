# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``VaultModule``: an AnsibleModule that merges the shared connection spec,
builds the client once, and fails with the shared error messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod
from ansible_collections.heracles.secrets.plugins.module_utils.errors import describe, join_hint

REDACTED = "<redacted>"


def fingerprint(value):
    """A short, non-reversible marker of a secret value for diffs (sha256, 12 hex)."""
    if value is None:
        return None
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


class VaultModule(AnsibleModule):
    """AnsibleModule + CONNECTION_SPEC + one hvac client + error mapping."""

    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(client_mod.CONNECTION_SPEC)
        spec.update(argument_spec or {})
        super(VaultModule, self).__init__(argument_spec=spec, **kwargs)
        if not client_mod.HAS_HVAC:
            self.fail_json(msg=missing_required_lib("hvac"))
        if not self.params.get("validate_certs", True):
            self.warn("validate_certs=false: TLS certificates are NOT verified. Use ca_cert instead outside throw-away labs.")
        elif client_mod.skip_verify_set():
            self.warn("%s is set, but this collection ignores it: TLS certificates ARE verified. Only "
                      "validate_certs=false turns verification off (with a warning); prefer ca_cert."
                      % client_mod.skip_verify_set())
        self._client = None

    def connect(self):
        """Build (once) the authenticated, leader-following client; raises on failure."""
        if self._client is None:
            self._client = client_mod.build_client(self.params)
        return self._client

    @property
    def client(self):
        """Like ``connect()`` but fails the module with a clear message."""
        try:
            return self.connect()
        except Exception as exc:  # noqa: BLE001 - mapped to a clear message
            self.fail_from(exc, "Connecting to Vault")

    def node_client(self, url, login=False, retries=None):
        """A client pinned to one node (no leader-following), e.g. for unseal."""
        try:
            return client_mod.build_client(self.params, url=url, login=login, retries=retries)
        except Exception as exc:  # noqa: BLE001
            self.fail_from(exc, "Connecting to %s" % url, url=url)

    def node_urls(self):
        """The configured node addresses: ``url`` first, then ``nodes``, without duplicates."""
        urls = []
        for url in [client_mod.resolve(self.params, "url", client_mod.DEFAULT_URL)] + list(self.params.get("nodes") or []):
            url = url.rstrip("/")
            if url not in urls:
                urls.append(url)
        return urls

    def endpoint_info(self):
        """Where requests went, and any leader moves seen: returned by every module."""
        if self._client is None:
            return {}
        adapter = self._client.adapter
        return {"vault_endpoint": adapter.base_uri, "leader_changes": list(adapter.history)}

    def fail_from(self, exc, what=None, url=None, **result):
        if url is None and self._client is not None:
            url = self._client.adapter.base_uri
        message, hint = describe(exc, url=url, what=what)
        msg = join_hint(message, hint)
        result.update(self.endpoint_info())
        result.setdefault("changed", False)
        # The traceback names code lines only; hvac exceptions carry server
        # error strings, never our request bodies, so this cannot leak a value.
        self.fail_json(msg=msg, exception=traceback.format_exc(), **result)

    def exit_ok(self, **result):
        result.update(self.endpoint_info())
        self.exit_json(**result)
