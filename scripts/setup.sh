#!/usr/bin/env bash
# Installs everything llmbridge needs on a fresh Debian machine, then builds and
# installs the package. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/debian_packages.sh
source scripts/debian_packages.sh
need_debian_packages setup libcurl4-openssl-dev libsimdjson-dev catch2 g++ cmake openssl ccache

# shellcheck source=scripts/build_env.sh
source scripts/build_env.sh

PY=${PYTHON:-python3}
extras=${LLMBRIDGE_EXTRAS:-test,typecheck}
"$PY" -m pip install -q --root-user-action=ignore --disable-pip-version-check "scikit-build-core>=0.10" "pybind11>=2.12" ninja
"$PY" -m pip install -q --root-user-action=ignore --disable-pip-version-check --no-build-isolation ".[${extras}]"
