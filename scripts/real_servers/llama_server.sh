#!/usr/bin/env bash
# Builds llama.cpp's llama-server for the real-server test tier and caches it outside
# the checkout, keyed by version: $LLMBRIDGE_CACHE (default ~/.cache/llmbridge)
# /llama-server-<version>/bin/llama-server. Safe to run again: a cached binary that
# answers --version costs seconds.
#
# The llama.cpp source is the tree vendored in the llama-cpp-python sdist on PyPI
# (no GitHub downloads needed). The build is portable (GGML_NATIVE=OFF: the cache may
# outlive the CPU it was built on), offline (no curl, no web UI download) and
# statically linked against llama/ggml. About 20 CPU-minutes on 2 cores.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36

cache=${LLMBRIDGE_CACHE:-$HOME/.cache/llmbridge}
prefix="$cache/llama-server-$LLAMA_CPP_PYTHON_VERSION"
binary="$prefix/bin/llama-server"
started=$SECONDS

say() { echo "llama_server.sh: $*" >&2; }

cached_ok() {
  [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1
}

if cached_ok; then
  say "cached: $binary ($("$binary" --version 2>&1 | grep -m1 -i version || true))"
  say "done in $((SECONDS - started)) s"
  echo "$binary"
  exit 0
fi

mkdir -p "$prefix/bin"
# One build at a time per cache (two test runs on one machine would otherwise both build).
exec 9>"$prefix/.lock"
if ! flock -n 9; then
  say "another build holds $prefix/.lock; waiting for it"
  flock 9
  if cached_ok; then
    say "built by the other run: $binary"
    echo "$binary"
    exit 0
  fi
fi

# --- build dependencies -------------------------------------------------------------
PY=${PYTHON:-python3}
need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v ninja >/dev/null 2>&1; then
  say "installing ninja with pip"
  "$PY" -m pip install -q --root-user-action=ignore --disable-pip-version-check ninja
fi

# --- source -------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")
trap 'rm -rf "$work" "$binary.partial.$$"' EXIT
say "fetching the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist (vendored llama.cpp) into $work"
# --no-binary for this one package only: ':all:' would make pip build cmake from source
# just to read the sdist's metadata.
"$PY" -m pip download -q --disable-pip-version-check --no-binary llama-cpp-python --no-deps \
  "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work/sdist"
tar -xzf "$work"/sdist/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
[ -f "$src/CMakeLists.txt" ] || { say "no vendor/llama.cpp in the sdist"; exit 1; }

# --- build --------------------------------------------------------------------------
jobs=${LLAMA_SERVER_JOBS:-$(nproc 2>/dev/null || echo 2)}
say "configuring $src"
cmake -S "$src" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF \
  -DLLAMA_CURL=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON >"$work/configure.log" 2>&1 \
  || { tail -40 "$work/configure.log" >&2; exit 1; }
say "building llama-server with -j$jobs (about 20 CPU-minutes)"
cmake --build "$work/build" --target llama-server -j"$jobs"
built="$work/build/bin/llama-server"
"$built" --version >/dev/null 2>&1 || { say "the built binary does not run --version"; exit 1; }

# Copy next to the destination, then rename: an interrupted run never leaves a half
# binary under the name the fixtures look for.
cp "$built" "$binary.partial.$$"
mv -f "$binary.partial.$$" "$binary"
say "installed $binary ($("$binary" --version 2>&1 | grep -m1 -i version || true))"
say "done in $((SECONDS - started)) s"
echo "$binary"
