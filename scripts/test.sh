#!/usr/bin/env bash
# Runs every test: the C++ core with Catch2 (via ctest), short libFuzzer runs, then the
# Python API with pytest, including the real-server tier (a real vLLM on CPU and
# llama.cpp's llama-server, set up once per machine and cached in ~/.cache/llmbridge).
#
# Before pytest, scripts/test_wheels.sh builds the wheels for CPython 3.9-3.13 and tests
# each in a fresh venv (the full pytest suite runs on python3, 3.11).
#
# LLMBRIDGE_SKIP_REAL_SERVERS=1 skips the real-server tier (a quick local loop; .ci/run
# never sets it). FUZZ_SECONDS (default 20) is each fuzz target's time; 0 skips fuzzing.
# LLMBRIDGE_SKIP_WHEELS=1 skips the wheels (.ci/run never sets it either).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase() { echo "test: $1 done at $((SECONDS - start)) s" >&2; }
bash scripts/setup.sh
phase "setup (Debian packages, pip install of the package)"
# shellcheck source=scripts/build_env.sh
source scripts/build_env.sh

case "${LLMBRIDGE_SKIP_REAL_SERVERS:-0}" in
  "" | 0)
    bash scripts/real_servers/llama_server.sh
    bash scripts/real_servers/vllm_cpu.sh
    ;;
  *) echo "test: LLMBRIDGE_SKIP_REAL_SERVERS is set: the real-server tier is skipped" >&2 ;;
esac
phase "real servers (cached builds)"

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMBRIDGE_BUILD_TESTS=ON >/dev/null
cmake --build build/cpp -j"$jobs"
ctest --test-dir build/cpp --output-on-failure -j"$jobs"
phase "Catch2 build and ctest"

# libFuzzer targets (clang, ASan + UBSan): saved regressions, then a short run of each (20 s).
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash scripts/fuzz.sh
  phase "fuzz build and runs"
fi

# The wheels users install: built, repaired and tested in a fresh venv on every supported
# Python (scripts/test_wheels.sh). A failure here is reported after the full pytest run.
wheels_status=0
if [ "${LLMBRIDGE_SKIP_WHEELS:-0}" = 0 ]; then
  bash scripts/test_wheels.sh || wheels_status=$?
  phase "wheels (build, repair, fresh-venv checks and tests on each Python)"
else
  echo "test: LLMBRIDGE_SKIP_WHEELS is set: the wheels are not built or tested" >&2
fi

status=0
python3 -m pytest "$@" || status=$?
phase "pytest"
if [ "$wheels_status" != 0 ]; then
  echo "test: the wheel tests FAILED (scripts/test_wheels.sh, above)" >&2
  exit "$wheels_status"
fi
exit "$status"
