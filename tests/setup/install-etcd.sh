#!/usr/bin/env bash
# Install a real etcd for tests/integration/test_envelope_encryption.py (Debian's etcd-server package: etcd 3.4
# on bookworm; its gRPC gateway serves the JSON API at /v3/kv/* the modules use). Idempotent: does nothing when
# `etcd` is already on PATH. Needs root (or sudo) and apt; the tests start their own etcd on loopback ports in a
# temporary directory, so the packaged service is stopped and disabled where systemd runs.
set -euo pipefail

if command -v etcd >/dev/null 2>&1; then
  echo "etcd already installed: $(etcd --version 2>/dev/null | head -n1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-etcd.sh: needs root or sudo to apt-get install etcd-server" >&2; exit 1; }
  SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "install-etcd.sh: no apt-get here; install etcd >= 3.4 (https://github.com/etcd-io/etcd/releases) and put it on PATH" >&2
  exit 1
}

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: etcd-client is not needed (the modules and tests speak the JSON gateway).
$SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
# The package starts a system etcd on 127.0.0.1:2379 where systemd runs; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
fi
echo "installed: $(etcd --version | head -n1)"
