"""Print a base port whose node ports are all free on 127.0.0.1, as JSON.

Used by the Molecule scenarios' create step so a scenario never collides with ``make up`` (8200) or with
the pytest clusters: node N uses ``base + step * (N - 1) + k`` for k in range(width).

    python free_ports.py --nodes 3 --step 10 --width 2   ->   {"base_port": 23400, "ports": [23400, ...]}
"""

import argparse
import json
import random
import socket

LOW = 20000
HIGH = 50000
ATTEMPTS = 200


def port_free(port, host="127.0.0.1"):
    """True when ``port`` can be bound on ``host`` right now."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def node_ports(base, nodes, step, width):
    return [base + index * step + offset for index in range(nodes) for offset in range(width)]


def find_base_port(nodes, step, width, low=LOW, high=HIGH):
    """A random base port (multiple of 100) whose ``nodes * width`` ports are free."""
    rng = random.SystemRandom()
    for attempt in range(ATTEMPTS):
        base = rng.randrange(low, high, 100)
        ports = node_ports(base, nodes, step, width)
        if all(port_free(port) for port in ports):
            return base, ports
    raise SystemExit("no free port range found in %d..%d after %d attempts" % (low, high, attempt + 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--width", type=int, default=2, help="ports per node (API and cluster port: 2)")
    args = parser.parse_args()
    base, ports = find_base_port(args.nodes, args.step, args.width)
    print(json.dumps({"base_port": base, "ports": ports}))


if __name__ == "__main__":
    main()
