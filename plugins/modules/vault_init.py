#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_init
short_description: Initialise a Vault/OpenBao cluster and store its keys encrypted
version_added: "0.1.0"
description:
  - Calls C(PUT /v1/sys/init) on O(url) when the cluster is not initialised, with Shamir shares or, for an
    auto-unseal seal, recovery shares.
  - The unseal (or recovery) keys and the root token are written only to an encrypted destination
    (O(init_store)), either an ansible-vault file with mode 0600 (default) or an AWS Secrets Manager secret under a
    KMS key.
    They are not returned unless O(return_keys=true).
  - Before initialising, the destination is checked (writable, not already holding material) so that keys are never
    generated with nowhere to go.
  - An initialised cluster gives C(changed=false). With O(init_store=file) the existing init file must then open
    with the given password and hold init material; otherwise the task fails, since nothing could unseal the cluster
    from it (a wrong O(init_file_password_file) is found here, not at the next restart).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_unseal
  - module: heracles.secrets.vault_status_info
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads the init status and checks the destination; does not initialise.
  diff_mode:
    support: none
    description: Returns no diff; the only change is the one-time initialisation.
options:
  secret_shares:
    description: Number of Shamir unseal key shares (Shamir seal only).
    type: int
    default: 5
  secret_threshold:
    description: Shares needed to unseal.
    type: int
    default: 3
  recovery_shares:
    description: Number of recovery key shares (auto-unseal seals only).
    type: int
    default: 5
  recovery_threshold:
    description: Recovery shares needed for privileged operations.
    type: int
    default: 3
  pgp_keys:
    description:
      - Base64 PGP public keys, one per share; the server encrypts each key share with one of them.
    type: list
    elements: str
  root_token_pgp_key:
    description: Base64 PGP public key that encrypts the root token.
    type: str
  overwrite_init_file:
    description:
      - Allow replacing existing init material at the destination. It may be another cluster's only copy of its keys.
    type: bool
    default: false
  return_keys:
    description:
      - Also return the keys and root token in the result. They then appear wherever the result goes; avoid outside labs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Initialise and keep the keys in an ansible-vault file
  heracles.secrets.vault_init:
    url: https://127.0.0.1:8200
    ca_cert: .local/cluster/tls/ca.pem
    init_file: .local/cluster/init.vault
    init_file_password_file: .local/vault-pass

- name: Initialise an auto-unseal cluster, recovery keys to Secrets Manager
  heracles.secrets.vault_init:
    url: https://vault.prod.example.com:8200
    recovery_shares: 5
    recovery_threshold: 3
    init_store: aws_secretsmanager
    aws_secret_name: heracles/prod/vault-init
    aws_kms_key_id: alias/heracles-prod-vault-init
"""

RETURN = r"""
initialized:
  description: Whether the cluster is initialised after the task (in check mode, before).
  returned: always
  type: bool
seal_type:
  description: Seal type reported by the server (C(shamir), C(awskms), ...).
  returned: always
  type: str
key_shares:
  description: Number of key shares created.
  returned: changed
  type: int
key_threshold:
  description: Threshold of the shares.
  returned: changed
  type: int
init_store:
  description: Where the encrypted material is (path or C(secretsmanager:<name>)).
  returned: always
  type: str
init_store_exists:
  description: Whether material exists at the destination.
  returned: always
  type: bool
keys:
  description: Unseal or recovery keys (base64). Only with O(return_keys=true).
  returned: when return_keys
  type: list
  elements: str
root_token:
  description: The root token. Only with O(return_keys=true).
  returned: when return_keys
  type: str
"""

import datetime

from ansible_collections.heracles.secrets.plugins.module_utils import api, keystore
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule


def build_payload(response, url, seal_type, recovery, shares, threshold):
    """The JSON stored (encrypted): keys, token, and what they belong to."""
    payload = dict(
        version=keystore.PAYLOAD_VERSION,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        url=url,
        seal_type=seal_type,
        root_token=response.get("root_token"),
        shares=shares,
        threshold=threshold,
    )
    if recovery:
        payload["recovery_keys_b64"] = response.get("recovery_keys_base64") or []
    else:
        payload["unseal_keys_b64"] = response.get("keys_base64") or []
    return payload


def exit_if_initialized(module, store, store_exists, seal, url, result):
    """An initialised cluster is left alone: warn when the store holds no material, prove a file's password; exit."""
    if not seal.get("initialized"):
        return
    if not store_exists:
        module.warn("The cluster is initialised but %s holds no init material: this collection cannot unseal it "
                    "from there. Point init_file at the file written when it was initialised." % store.location)
    elif store.kind == "file":
        try:
            store.read()  # decrypts in memory only: proves the password and the format, returns nothing
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Opening the existing init material (nothing was changed)", url=url, **result)
    module.exit_ok(**result)


def key_shape(module, recovery, result):
    """(shares, threshold) for the seal's kind of keys, checked with pgp_keys; fails before anything is created."""
    p = module.params
    shares, threshold = ((p["recovery_shares"], p["recovery_threshold"]) if recovery
                         else (p["secret_shares"], p["secret_threshold"]))
    if not 1 <= threshold <= shares:
        module.fail_json(msg="threshold must be between 1 and the number of shares (%d of %d); nothing was changed"
                         % (threshold, shares), **result)
    if p["pgp_keys"] and len(p["pgp_keys"]) != shares:
        module.fail_json(msg="pgp_keys must have one key per share (%d keys for %d shares); nothing was changed"
                         % (len(p["pgp_keys"]), shares), **result)
    return shares, threshold


def check_destination(module, store, store_exists, url, result):
    """Refuse *before* keys exist: an existing file may be another cluster's only copy."""
    try:
        store.check_writable()
        if store_exists and not module.params["overwrite_init_file"]:
            keystore.refuse_overwrite(store.location)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Checking the init destination", url=url, **result)


def initialize(module, client, recovery, shares, threshold, url):
    """``PUT sys/init`` with the shape for the seal's kind of keys; the answer holds the keys and the root token."""
    p = module.params
    kwargs = dict(pgp_keys=p["pgp_keys"], root_token_pgp_key=p["root_token_pgp_key"])
    if recovery:
        kwargs.update(recovery_shares=shares, recovery_threshold=threshold,
                      recovery_pgp_keys=p["pgp_keys"], pgp_keys=None)
    else:
        kwargs.update(secret_shares=shares, secret_threshold=threshold)
    try:
        return api.initialize(client, **kwargs)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Initialising", url=url, changed=False)


def run_module():
    module = VaultModule(
        argument_spec=dict(
            # Share counts, not secrets.
            secret_shares=dict(type="int", default=5, no_log=False),
            secret_threshold=dict(type="int", default=3, no_log=False),
            recovery_shares=dict(type="int", default=5),
            recovery_threshold=dict(type="int", default=3),
            pgp_keys=dict(type="list", elements="str", no_log=False),
            root_token_pgp_key=dict(type="str", no_log=False),
            overwrite_init_file=dict(type="bool", default=False),
            return_keys=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    url = module.node_urls()[0]
    client = module.node_client(url)
    try:
        seal = api.read_seal_status(client)
        store = keystore.open_store(p)
        store_exists = store.exists()
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading init status", url=url)
    recovery = bool(seal.get("recovery_seal"))
    result = dict(changed=False, initialized=bool(seal.get("initialized")), seal_type=seal.get("type"),
                  init_store=store.location, init_store_exists=store_exists)
    for warning in store.permission_warnings():
        module.warn(warning)
    exit_if_initialized(module, store, store_exists, seal, url, result)
    shares, threshold = key_shape(module, recovery, result)
    check_destination(module, store, store_exists, url, result)
    result.update(changed=True, key_shares=shares, key_threshold=threshold)
    if module.check_mode:
        module.exit_ok(**result)

    response = initialize(module, client, recovery, shares, threshold, url)
    payload = build_payload(response, url, seal.get("type"), recovery, shares, threshold)
    try:
        store.write(payload, overwrite=p["overwrite_init_file"])
    except Exception as exc:  # noqa: BLE001
        # Nothing to roll back to: init cannot be undone.  Say so plainly.
        module.fail_from(exc, "Storing the init material (the cluster IS initialised now; the keys exist only in "
                              "this process and are lost -- stop the servers, wipe their data and initialise again)",
                         url=url, changed=True)
    result.update(initialized=True, init_store_exists=True)
    if p["return_keys"]:
        result.update(keys=keystore.unseal_keys(payload), root_token=payload["root_token"])
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
