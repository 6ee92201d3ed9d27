#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_raft
short_description: Join a node, remove a dead peer, and manage autopilot of integrated Raft storage
version_added: "0.1.0"
description:
  - V(state=present) makes O(node_id) a raft peer by calling C(POST /v1/sys/storage/raft/join) on O(node_url)
    (for clusters without C(retry_join)); a node already in the raft configuration is left alone.
  - V(state=absent) removes O(node_id) with C(POST /v1/sys/storage/raft/remove-peer) on the active node. It refuses
    to remove the leader, and a peer that autopilot reports healthy unless O(force=true).
  - O(autopilot) sets C(sys/storage/raft/autopilot/configuration) when a given field differs
    (durations compare by value, so C(1m) equals C(60s)).
  - Without O(state) no peer is joined or removed; only O(autopilot) is enforced.
  - Always returns the peers and the autopilot configuration.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_status_info
  - module: heracles.secrets.vault_unseal
extends_documentation_fragment:
  - heracles.secrets.connection
  - heracles.secrets.connection.KEYSTORE
attributes:
  check_mode:
    support: full
    description: Reads peers and autopilot configuration and reports what would change.
  diff_mode:
    support: full
    description: Shows peer list and autopilot configuration before and after.
options:
  state:
    description:
      - V(present) joins O(node_id), V(absent) removes it.
      - When not set, no peer is joined or removed; O(autopilot) is still applied.
    type: str
    choices: [present, absent]
  node_id:
    description: Raft node_id of the peer to join or remove.
    type: str
  node_url:
    description: API address of the node that should join (O(state=present)).
    type: str
  leader_api_addr:
    description: Address the joining node contacts; by default the active node found by the client.
    type: str
  leader_ca_cert:
    description: Path of the CA (PEM) that signed the leader's certificate, sent to the joining node.
    type: path
  non_voter:
    description: Join as a non-voter.
    type: bool
    default: false
  force:
    description: Remove a peer even though autopilot reports it healthy.
    type: bool
    default: false
  autopilot:
    description: Autopilot settings to enforce; fields not given are left as they are.
    type: dict
    suboptions:
      cleanup_dead_servers:
        description: Remove dead servers automatically (needs O(autopilot.min_quorum) of at least 3).
        type: bool
      last_contact_threshold:
        description: Duration after which a server without contact is unhealthy.
        type: str
      dead_server_last_contact_threshold:
        description: Duration after which an unhealthy server is dead (at least C(1m) with cleanup).
        type: str
      max_trailing_logs:
        description: Log entries a server may lag before it is unhealthy.
        type: int
      min_quorum:
        description: Voters below which dead servers are not removed.
        type: int
      server_stabilization_time:
        description: How long a new server must be healthy before it is promoted to voter.
        type: str
"""

EXAMPLES = r"""
- name: Fast, safe autopilot for three voters
  heracles.secrets.vault_raft:
    autopilot:
      server_stabilization_time: 5s
      cleanup_dead_servers: true
      min_quorum: 3
      dead_server_last_contact_threshold: 1m

- name: Remove a node that is gone for good
  heracles.secrets.vault_raft:
    state: absent
    node_id: node3
"""

RETURN = r"""
peers:
  description: Raft peers after the task.
  returned: always
  type: list
  elements: dict
  sample:
    - node_id: node1
      address: 127.0.0.1:8201
      leader: true
      voter: true
autopilot_config:
  description: Autopilot configuration after the task.
  returned: always
  type: dict
needs_unseal:
  description: The joined node must now be unsealed (Shamir seal).
  returned: when state=present and changed
  type: bool
"""

from ansible_collections.heracles.secrets.plugins.module_utils import api
from ansible_collections.heracles.secrets.plugins.module_utils import client as client_mod
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.module import VaultModule

AUTOPILOT_FIELDS = dict(
    cleanup_dead_servers=dict(type="bool"),
    last_contact_threshold=dict(type="str"),
    dead_server_last_contact_threshold=dict(type="str"),
    max_trailing_logs=dict(type="int"),
    min_quorum=dict(type="int"),
    server_stabilization_time=dict(type="str"),
)
DURATIONS = ("last_contact_threshold", "dead_server_last_contact_threshold", "server_stabilization_time")


def autopilot_changes(current, wanted):
    """Fields of ``wanted`` that differ from ``current`` (durations by value)."""
    changes = {}
    for key, value in (wanted or {}).items():
        if value is None:
            continue
        have = current.get(key)
        if key in DURATIONS:
            if parse_duration(have) != parse_duration(value):
                changes[key] = value
        elif have != value:
            changes[key] = value
    return changes


def validate_autopilot(merged):
    """The server silently accepts nonsense here; refuse it before sending anything."""
    for key in DURATIONS:
        if merged.get(key) is not None:
            parse_duration(merged[key])
    if merged.get("cleanup_dead_servers"):
        if (merged.get("min_quorum") or 0) < 3:
            raise ValueError("cleanup_dead_servers=true needs min_quorum >= 3")
        if parse_duration(merged.get("dead_server_last_contact_threshold") or "0s") < 60:
            raise ValueError("cleanup_dead_servers=true needs dead_server_last_contact_threshold >= 1m")


def read_peers(client):
    servers = api.read_raft_configuration(client).get("servers", [])
    return [dict(node_id=s.get("node_id"), address=s.get("address"), leader=bool(s.get("leader")),
                 voter=bool(s.get("voter"))) for s in servers]


def read_state(module, client, what, **result):
    """(peers, autopilot configuration), or fail saying ``what`` was being read."""
    try:
        return read_peers(client), api.read_autopilot_configuration(client)
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, what, **result)


def refuse_removal(module, client, peer):
    """The leader is never removed, a healthy live peer only with force=true."""
    p = module.params
    if peer["leader"]:
        module.fail_json(msg="%s is the raft leader; refusing to remove it. Step it down first "
                             "(PUT sys/step-down on it) and run again; nothing was changed" % p["node_id"])
    health = {}
    try:
        health = api.read_autopilot_state(client).get("servers") or {}
    except Exception:  # noqa: BLE001 - health is advisory here
        pass
    if (health.get(p["node_id"]) or {}).get("healthy") and not p["force"]:
        module.fail_json(msg="%s is a healthy, live peer; removing it lowers fault tolerance. Set force=true if "
                             "that is what you want; nothing was changed" % p["node_id"])


def ensure_peer(module, client, by_id, result):
    """Join ``node_id`` (state=present) or remove it (state=absent) when needed; True when the peer set changes."""
    p = module.params
    if p["state"] == "present" and p["node_id"] not in by_id:
        if module.check_mode:
            return True
        result["needs_unseal"] = True
        return join_node(module, client)
    if p["state"] == "absent" and p["node_id"] in by_id:
        refuse_removal(module, client, by_id[p["node_id"]])
        if not module.check_mode:
            try:
                api.remove_raft_node(client, p["node_id"])
            except Exception as exc:  # noqa: BLE001
                module.fail_from(exc, "Removing raft peer %s" % p["node_id"])
        return True
    return False


def ensure_autopilot(module, client, autopilot):
    """Set the autopilot fields that differ (validated first) and update ``autopilot``; True when any differ."""
    p = module.params
    if not p["autopilot"]:
        return False
    wanted = dict((k, v) for k, v in p["autopilot"].items() if v is not None)
    try:
        changes = autopilot_changes(autopilot, wanted)
        merged = dict(autopilot)
        merged.update(wanted)
        validate_autopilot(merged)
    except ValueError as exc:
        module.fail_json(msg="autopilot: %s; nothing was changed" % exc)
    if not changes:
        return False
    if not module.check_mode:
        try:
            api.configure_autopilot(client, wanted)
        except Exception as exc:  # noqa: BLE001
            module.fail_from(exc, "Setting the autopilot configuration")
    autopilot.update(changes)
    return True


def planned_peers(p, peers):
    """Check mode: the peers a real run would leave."""
    if p["state"] == "present":
        return peers + [dict(node_id=p["node_id"], address=None, leader=False, voter=not p["non_voter"])]
    if p["state"] == "absent":
        return [x for x in peers if x["node_id"] != p["node_id"]]
    return peers


def run_module():
    module = VaultModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"]),
            node_id=dict(type="str"),
            node_url=dict(type="str"),
            leader_api_addr=dict(type="str"),
            leader_ca_cert=dict(type="path"),
            non_voter=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            autopilot=dict(type="dict", options=AUTOPILOT_FIELDS),
        ),
        required_if=[("state", "present", ("node_id", "node_url")), ("state", "absent", ("node_id",))],
        supports_check_mode=True,
    )
    p = module.params
    client = module.client
    peers, autopilot = read_state(module, client, "Reading raft configuration")
    before = dict(peers=[x["node_id"] for x in peers], autopilot=dict(autopilot))
    result = {}
    changed = ensure_peer(module, client, dict((x["node_id"], x) for x in peers), result)
    changed |= ensure_autopilot(module, client, autopilot)
    if changed and not module.check_mode:
        peers, autopilot = read_state(module, client, "Reading raft configuration", changed=True)
    elif changed and module.check_mode:
        peers = planned_peers(p, peers)
    result.update(changed=changed, peers=peers, autopilot_config=autopilot)
    if module._diff:
        result["diff"] = dict(before=before, after=dict(peers=[x["node_id"] for x in peers], autopilot=autopilot))
    module.exit_ok(**result)


def join_node(module, client):
    """``POST sys/storage/raft/join`` on the joining node itself."""
    p = module.params
    leader = p["leader_api_addr"] or client_mod.current_address(client)
    ca_pem = None
    if p["leader_ca_cert"]:
        try:
            with open(p["leader_ca_cert"]) as handle:
                ca_pem = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg="Cannot read leader_ca_cert %s: %s; nothing was changed" % (p["leader_ca_cert"], exc))
    node = module.node_client(p["node_url"].rstrip("/"))
    try:
        body = api.join_raft_cluster(node, leader, leader_ca_cert=ca_pem, non_voter=p["non_voter"])
    except Exception as exc:  # noqa: BLE001
        module.fail_from(exc, "Joining %s to %s" % (p["node_url"], leader), url=p["node_url"])
    if not (body or {}).get("joined"):
        module.fail_json(msg="%s did not join %s (answer: %s). Check that it can reach the leader and trusts its "
                             "certificate (leader_ca_cert)" % (p["node_url"], leader, body))
    return True


def main():
    run_module()


if __name__ == "__main__":
    main()
