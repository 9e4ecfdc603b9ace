#!/usr/bin/env bash
# The test command. On a fresh Debian machine it installs everything the tests need (the package
# and its test dependencies, the Docker engine and the offline sandbox image, the CPU build of
# vLLM), then runs the whole test suite, Docker and vLLM tests included. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '== %s\n' "$*" >&2; }

bash scripts/install.sh dev

# Docker, vLLM and Ray tests must run here, not skip: a missing engine is a failure.
export PASSK_REQUIRE_DOCKER=1 PASSK_REQUIRE_VLLM=1 PASSK_REQUIRE_RAY=1
log "running the tests"
exec python3 -m pytest tests -p no:cacheprovider "$@"
