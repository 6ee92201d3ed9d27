#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_status_info
short_description: Seal, init, leader, raft peers and autopilot health of a Vault/OpenBao cluster
version_added: "0.1.0"
description:
  - Asks every node in O(url) and O(nodes) for its seal status and leader (unauthenticated endpoints), then, when a
    token is available, asks the active node for the raft configuration and autopilot state and configuration.
  - Never fails because a node is down or sealed; that is what it reports. It fails only on bad input or TLS errors.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_raft
  - module: heracles.secrets.vault_unseal
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
  - heracles.secrets.attributes.info_module
options:
  scope:
    description:
      - V(cluster) reports every node plus raft and autopilot data; V(node) reports O(url) only.
    type: str
    default: cluster
    choices: [cluster, node]
  include_raft:
    description: Read raft peers and autopilot state from the active node (needs a token with read on C(sys/storage/raft)).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Where is the leader, and are all nodes unsealed?
  heracles.secrets.vault_status_info:
    url: https://127.0.0.1:8200
    nodes: [https://127.0.0.1:8210, https://127.0.0.1:8220]
    ca_cert: .local/cluster/tls/ca.pem
    auth_method: init_file
    init_file: .local/cluster/init.vault
    init_file_password_file: .local/vault-pass
  register: status

- name: Wait for three healthy voters
  heracles.secrets.vault_status_info:
  register: status
  until: status.voters | length == 3 and status.autopilot.healthy | default(false)
  retries: 30
  delay: 1
"""

RETURN = r"""
nodes:
  description: Per-node status, in the order of O(url) then O(nodes).
  returned: always
  type: list
  elements: dict
  sample:
    - url: https://127.0.0.1:8200
      reachable: true
      initialized: true
      sealed: false
      active: true
      version: 2.7.2
      seal_type: shamir
      progress: 0
      threshold: 3
initialized:
  description: Whether any reachable node reports the cluster initialised.
  returned: always
  type: bool
sealed_nodes:
  description: URLs of reachable nodes that are sealed.
  returned: always
  type: list
  elements: str
unreachable_nodes:
  description: URLs that did not answer.
  returned: always
  type: list
  elements: str
leader:
  description: API address of the active node, or null when there is none.
  returned: always
  type: str
  sample: https://127.0.0.1:8200
version:
  description: Server version of the first reachable node.
  returned: always
  type: str
peers:
  description: Raft peers from the active node (empty without a token or leader).
  returned: always
  type: list
  elements: dict
  sample:
    - node_id: node1
      address: 127.0.0.1:8201
      leader: true
      voter: true
voters:
  description: node_ids of the raft voters.
  returned: always
  type: list
  elements: str
autopilot:
  description: Autopilot state (C(healthy), C(failure_tolerance), C(leader), C(servers)) and C(config).
  returned: always
  type: dict
raft_error:
  description: Why raft data is missing, when it is.
  returned: when raft data could not be read
  type: str
"""

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError, describe
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

try:
    import requests
except ImportError:  # pragma: no cover - VaultModule reports the missing library
    requests = None


def read_node(module, url):
    """``GET sys/seal-status`` and ``GET sys/leader`` on one node, no retries."""
    out = dict(url=url, reachable=False)
    try:
        client = module.node_client(url, retries=0)
        seal = api.read_seal_status(client)
    except Exception as exc:  # noqa: BLE001 - a down node is data, not a failure
        if requests is not None and isinstance(exc, requests.exceptions.SSLError):
            module.fail_from(exc, "Reading status", url=url)
        out["error"] = describe(exc, url=url)[0]
        return out
    out.update(reachable=True, initialized=seal.get("initialized"), sealed=seal.get("sealed"),
               version=seal.get("version"), seal_type=seal.get("type"), recovery_seal=seal.get("recovery_seal"),
               progress=seal.get("progress"), threshold=seal.get("t"), shares=seal.get("n"),
               cluster_name=seal.get("cluster_name"), cluster_id=seal.get("cluster_id"), active=False)
    if not seal.get("sealed"):
        try:
            leader = api.read_leader_status(client)
            out["active"] = bool(leader.get("is_self"))
            out["leader_address"] = leader.get("leader_address") or None
            out["raft_committed_index"] = leader.get("raft_committed_index")
        except Exception as exc:  # noqa: BLE001
            out["error"] = describe(exc, url=url)[0]
    return out


def read_raft(module):
    """Raft config and autopilot, from the active node (``sys/storage/raft/...``)."""
    client = module.connect()
    config = api.read_raft_configuration(client)
    peers = [dict(node_id=s.get("node_id"), address=s.get("address"), leader=bool(s.get("leader")),
                  voter=bool(s.get("voter")), protocol_version=s.get("protocol_version"))
             for s in config.get("servers", [])]
    state = api.read_autopilot_state(client)
    conf = api.read_autopilot_configuration(client)
    servers = {}
    for node_id, srv in (state.get("servers") or {}).items():
        servers[node_id] = dict(status=srv.get("status"), healthy=srv.get("healthy"), node_type=srv.get("node_type"),
                                last_contact=srv.get("last_contact"), last_index=srv.get("last_index"))
    autopilot = dict(healthy=state.get("healthy"), failure_tolerance=state.get("failure_tolerance"),
                     leader=state.get("leader"), voters=state.get("voters") or [], servers=servers, config=conf)
    return peers, autopilot


def run_module():
    module = VaultModule(
        argument_spec=dict(
            scope=dict(type="str", default="cluster", choices=["cluster", "node"]),
            include_raft=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    urls = module.node_urls()
    if module.params["scope"] == "node":
        urls = urls[:1]
    nodes = [read_node(module, url) for url in urls]
    reachable = [n for n in nodes if n["reachable"]]
    active = [n["url"] for n in reachable if n.get("active")]
    advertised = [n.get("leader_address") for n in reachable if n.get("leader_address")]
    result = dict(
        changed=False,
        nodes=nodes,
        initialized=any(n.get("initialized") for n in reachable),
        sealed_nodes=[n["url"] for n in reachable if n.get("sealed")],
        unreachable_nodes=[n["url"] for n in nodes if not n["reachable"]],
        leader=active[0] if active else (advertised[0].rstrip("/") if advertised else None),
        version=reachable[0]["version"] if reachable else None,
        peers=[], voters=[], autopilot={},
    )
    if module.params["include_raft"] and result["leader"]:
        try:
            result["peers"], result["autopilot"] = read_raft(module)
            result["voters"] = sorted(p["node_id"] for p in result["peers"] if p["voter"])
        except HeraclesError as exc:
            result["raft_error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - status must still be returned
            result["raft_error"] = describe(exc, what="Reading raft state")[0]
    module.exit_ok(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
