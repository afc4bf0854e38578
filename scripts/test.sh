#!/usr/bin/env bash
# Runs every test: the C++ core with Catch2 (via ctest), then the Python API with pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMBRIDGE_BUILD_TESTS=ON >/dev/null
cmake --build build/cpp -j"$jobs"
ctest --test-dir build/cpp --output-on-failure -j"$jobs"

python3 -m pytest "$@"
