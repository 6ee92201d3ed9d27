#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_unseal
short_description: Unseal every sealed node with keys from the encrypted init material
version_added: "0.1.0"
description:
  - Reads the unseal keys from O(init_store) (decrypted in memory only) and submits them with C(PUT /v1/sys/unseal)
    to each sealed node in O(url) and O(nodes). Unsealed nodes are left alone (C(changed=false)).
  - Nodes that are not initialised yet because they are still joining through C(retry_join) are waited for
    (up to O(wait_timeout)) and then unsealed; they are handled in parallel after the initialised ones.
  - A partial unseal left by an earlier attempt is reset first, so keys are never counted twice.
  - Nodes with an auto-unseal seal cannot take key shares; a sealed one is reported with what to check (the KMS key).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_init
  - module: heracles.secrets.vault_status_info
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads seal status and decrypts the keys (proving they are available) but submits nothing.
  diff_mode:
    support: none
    description: Returns no diff; per-node seal status before and after is in RV(nodes).
options:
  wait_timeout:
    description: Seconds to wait for a node to finish joining, and then to report unsealed.
    type: int
    default: 60
  require_all:
    description:
      - Fail when a node stays sealed or unreachable. With V(false) such nodes are only reported (for recovery runs
        where a node is known dead).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Unseal all three local nodes
  heracles.secrets.vault_unseal:
    url: https://127.0.0.1:8200
    nodes: [https://127.0.0.1:8210, https://127.0.0.1:8220]
    ca_cert: .local/cluster/tls/ca.pem
    init_file: .local/cluster/init.vault
    init_file_password_file: .local/vault-pass
"""

RETURN = r"""
nodes:
  description: One entry per node with its state before and after.
  returned: always
  type: list
  elements: dict
  sample:
    - url: https://127.0.0.1:8210
      before: uninitialized
      after: unsealed
      changed: true
      seconds: 3.1
unsealed:
  description: URLs that this task unsealed (or would unseal in check mode).
  returned: always
  type: list
  elements: str
still_sealed:
  description: URLs that are sealed or unreachable after the task.
  returned: always
  type: list
  elements: str
"""

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.heracles.secrets.plugins.module_utils import api, keystore
from ansible_collections.heracles.secrets.plugins.module_utils.errors import NOT_INIT_HINT, HeraclesError, describe, join_hint
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

try:
    import hvac.exceptions as hvac_exc
except ImportError:  # pragma: no cover - VaultModule reports the missing library
    hvac_exc = None

POLL = 0.25


class UnsealError(HeraclesError):
    pass


def state_of(seal):
    if not seal.get("initialized"):
        return "uninitialized"
    return "sealed" if seal.get("sealed") else "unsealed"


def wait_for(client, predicate, timeout):
    deadline = time.time() + timeout
    while True:
        seal = api.read_seal_status(client)
        if predicate(seal) or time.time() >= deadline:
            return seal
        time.sleep(POLL)


def unseal_node(client, url, keys, timeout):
    """Submit keys until ``url`` is unsealed; raise UnsealError with a clear reason otherwise."""
    seal = wait_for(client, lambda s: s.get("initialized"), timeout)
    if not seal.get("initialized"):
        raise UnsealError("%s did not join the cluster within %ss (still not initialised)" % (url, timeout),
                          "Check its log for 'failed to get raft challenge': retry_join addresses, "
                          "leader_tls_servername and the CA must match the leader's certificate")
    if not seal.get("sealed"):
        return seal
    if seal.get("recovery_seal"):
        raise UnsealError("%s uses auto-unseal (%s) and is sealed: key shares cannot unseal it" % (url, seal.get("type")),
                          "Check that the seal's KMS key exists, is enabled and the node's role may kms:Decrypt; "
                          "see unseal-recovery.yml for seal migration")
    threshold = seal.get("t") or len(keys)
    if len(keys) < threshold:
        raise UnsealError("The init material holds %d key(s) but %s needs %d" % (len(keys), url, threshold),
                          "Supply the missing shares (rekeyed cluster?) or use the right init file")
    if seal.get("progress"):
        api.submit_unseal_key(client, reset=True)
    for key in keys[:threshold]:
        try:
            seal = api.submit_unseal_key(client, key=key)
        except hvac_exc.InvalidRequest as exc:
            raise UnsealError("%s rejected the unseal keys (%s)" % (url, "; ".join(exc.errors or [])),
                              "The init material does not belong to this cluster or the keys were rekeyed: "
                              "point init_file at this cluster's file; nothing was changed")
        if not seal.get("sealed"):
            return seal
    # A follower says "sealed" on the threshold call and unseals about a second later.
    seal = wait_for(client, lambda s: not s.get("sealed"), timeout)
    if seal.get("sealed"):
        raise UnsealError("%s is still sealed %ss after the threshold of keys was given" % (url, timeout),
                          "Read the node's log; a wrong key set resets progress to 0")
    return seal


def unseal_entry(entry, keys, timeout):
    """Unseal the node of ``entry`` (``url``, ``client``) and record the outcome in it; on failure ``error`` reads
    "<what happened>. <what to do>"."""
    started = time.time()
    try:
        seal = unseal_node(entry["client"], entry["url"], keys, timeout)
        entry.update(after=state_of(seal), changed=True)
    except Exception as exc:  # noqa: BLE001
        entry.update(after="sealed", error=join_hint(*describe(exc, url=entry["url"])))
    entry["seconds"] = round(time.time() - started, 2)


def probe_nodes(module, urls):
    """One entry per node: its state before (sealed, unsealed, uninitialized, unreachable) and a client pinned to it."""
    nodes = []
    for url in urls:
        entry = dict(url=url, changed=False)
        try:
            client = module.node_client(url, retries=1)
            seal = api.read_seal_status(client)
            entry.update(before=state_of(seal), client=client)
        except Exception as exc:  # noqa: BLE001
            entry.update(before="unreachable", after="unreachable", error=describe(exc, url=url)[0])
        nodes.append(entry)
    return nodes


def unseal_nodes(module, nodes, keys):
    """Unseal every sealed or joining node (check mode: say they would be); True when any was (would be) unsealed."""
    def work(entry):
        unseal_entry(entry, keys, module.params["wait_timeout"])

    todo = [n for n in nodes if n["before"] in ("sealed", "uninitialized")]
    for entry in nodes:
        if entry["before"] == "unsealed":
            entry["after"] = "unsealed"
    if module.check_mode:
        for entry in todo:
            entry.update(after="unsealed", changed=True)
    else:
        # Initialised nodes first (the leader must be up before followers can join), then the joiners in parallel.
        for entry in [n for n in todo if n["before"] == "sealed"]:
            work(entry)
        joiners = [n for n in todo if n["before"] == "uninitialized"]
        if joiners:
            with ThreadPoolExecutor(max_workers=len(joiners)) as pool:
                list(pool.map(work, joiners))
    return any(n["changed"] for n in nodes)


def run_module():
    module = VaultModule(
        argument_spec=dict(
            wait_timeout=dict(type="int", default=60),
            require_all=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        payload = keystore.open_store(p).read()
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Reading the unseal keys")
    keys = keystore.unseal_keys(payload)

    nodes = probe_nodes(module, module.node_urls())
    reachable = [n for n in nodes if n["before"] != "unreachable"]
    if reachable and all(n["before"] == "uninitialized" for n in reachable):
        for entry in nodes:
            entry.pop("client", None)
        module.fail_json(msg="No node is initialised, so there is nothing to unseal. %s" % NOT_INIT_HINT,
                         changed=False, nodes=nodes)
    changed = unseal_nodes(module, nodes, keys)

    for entry in nodes:
        entry.pop("client", None)
    result = dict(
        changed=changed,
        nodes=nodes,
        unsealed=[n["url"] for n in nodes if n["changed"]],
        still_sealed=[n["url"] for n in nodes if n.get("after") != "unsealed"],
    )
    failed = [n for n in nodes if n.get("error")]
    if failed and p["require_all"]:
        module.fail_json(msg="Could not unseal %d node(s): %s" % (len(failed), " | ".join(n["error"] for n in failed)),
                         **result)
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
