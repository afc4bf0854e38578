#!/usr/bin/env bash
# The main job: installs llmbridge (with its CLI extra) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
LLMBRIDGE_EXTRAS="test,cli" bash scripts/setup.sh
python3 -m llmbridge demo "$@"
