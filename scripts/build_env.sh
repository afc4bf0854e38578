# Sourced by setup.sh, test.sh and fuzz.sh: every C++ build (the extension pip builds,
# the Catch2 build, the fuzz build) goes through ccache, whose cache lives outside the
# checkout beside the real-server builds ($LLMBRIDGE_CACHE, default ~/.cache/llmbridge).
# A fresh clone then recompiles only what changed. LLMBRIDGE_NO_CCACHE=1 turns it off.
if [ "${LLMBRIDGE_NO_CCACHE:-0}" = 0 ] && command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR=${CCACHE_DIR:-${LLMBRIDGE_CACHE:-$HOME/.cache/llmbridge}/ccache}
  # Paths under the checkout are hashed relative to it, so any clone path hits.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
  export CCACHE_NOHASHDIR=1
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
  # CMake (>= 3.17) takes the launcher from the environment for every configure.
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
