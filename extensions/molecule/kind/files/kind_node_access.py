"""NetworkPolicy kind-nodes: what kind needs beyond pulumi/platform's NetworkPolicies, from the live cluster.

kind >= v0.24 enforces NetworkPolicies (kindnetd), after Service DNAT. Two paths then differ from EKS:

* the API server: the ``kubernetes`` Service leads to the control plane's 6443 (EKS: 443, which Pulumi's egress
  policies allow), so Vault (TokenReview, auto_join) and ESO (its controllers, TokenRequest) need egress there;
* this host reaches the Vault pods through NodePorts, masqueraded to a kind node's address (an operator's range is
  ``vaultClientCidrs`` in a stack), so Vault's and ESO's pods admit ingress from the nodes' addresses.

Reads ``{"nodes": <kubectl get nodes -o json>, "api": <kubectl get endpointslices -l
kubernetes.io/service-name=kubernetes -n default -o json>}`` on stdin and ``kind.json`` (``--facts``); prints a
``v1 List`` of one NetworkPolicy per namespace (Vault's, ESO's) for ``kubectl apply -f -``. Only addresses of
nodes and of the API server appear: no pod or namespace selector, so pod-to-pod isolation stays Pulumi's.
"""

import argparse
import ipaddress
import json
import sys

NAME = "kind-nodes"
LABELS = {"app.kubernetes.io/part-of": "heracles-molecule"}


def host_cidr(address):
    ip = ipaddress.ip_address(address)
    return "%s/%d" % (ip, ip.max_prefixlen)


def node_addresses(nodes):
    return sorted({addr["address"] for node in nodes.get("items") or []
                   for addr in node.get("status", {}).get("addresses") or [] if addr["type"] == "InternalIP"})


def api_endpoints(slices):
    """``[(address, port)]`` of the API server, from the ``kubernetes`` Service's EndpointSlices."""
    out = set()
    for item in slices.get("items") or []:
        ports = [port["port"] for port in item.get("ports") or [] if port.get("protocol", "TCP") == "TCP"]
        for endpoint in item.get("endpoints") or []:
            out.update((address, port) for address in endpoint.get("addresses") or [] for port in ports)
    return sorted(out)


def policies(facts, nodes, slices):
    """The kind-nodes NetworkPolicy of Vault's and ESO's namespaces."""
    addresses, api = node_addresses(nodes), api_endpoints(slices)
    if not addresses or not api:
        raise SystemExit("no node InternalIP or no API server endpoint found: is KUBECONFIG the kind cluster's?")

    def blocks(ips):
        return [{"ipBlock": {"cidr": host_cidr(address)}} for address in sorted(set(ips))]

    egress = [{"to": blocks(a for a, p in api if p == port), "ports": [{"protocol": "TCP", "port": port}]}
              for port in sorted({pair[1] for pair in api})]
    ingress = [{"from": blocks(addresses)}]
    return {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": NAME, "namespace": namespace, "labels": dict(LABELS)},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}}
        for namespace in (facts["vault"]["namespace"], facts["eso"]["namespace"])]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", required=True, help="kind.json from kind_render.py")
    args = parser.parse_args()
    with open(args.facts) as handle:
        facts = json.load(handle)
    cluster = json.load(sys.stdin)
    print(json.dumps(policies(facts, cluster["nodes"], cluster["api"]), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
