#!/usr/bin/env bash
# The registry tests and the `make run` demo run Debian's Distribution registry server; install it when missing.
set -euo pipefail
if command -v docker-registry >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker-registry is missing; run: sudo apt-get install docker-registry" >&2
  exit 1
fi
echo "Installing Debian's docker-registry (the Distribution v2 registry server)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Its package would start a system service; the portal starts its own server where it needs one.
apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
