#!/usr/bin/env bash
# The wheels as a user gets them, on every supported CPython: builds and repairs them
# (scripts/wheels.sh), then for each Python installs its wheel, with the test extra, into a
# fresh venv and checks there
#   - ldd on the installed extension and its bundled libraries: everything outside the
#     wheel is on the manylinux allow-list (scripts/wheel_tools.py check),
#   - the bundled libraries are the ones docs/install.md lists,
#   - `import llmbridge` takes the installed package, and the `llmbridge` command runs,
#   - a fast subset of the pytest suite (the mock server, text tools, HTTPS, fork, stubs,
#     the examples), run against the installed package.
# Exits non-zero when a wheel fails to build, repair or install, or a check or test fails;
# the other Pythons still run, and a summary line per Python closes the output.
#
#   bash scripts/test_wheels.sh                    # all of them (scripts/pythons.sh)
#   LLMBRIDGE_WHEEL_PYTHONS=3.12 bash scripts/test_wheels.sh
#   bash scripts/test_wheels.sh tests_py/test_generate.py   # another subset
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { echo "test_wheels: $*" >&2; }

subset=("$@")
((${#subset[@]})) || subset=(tests_py/test_smoke.py tests_py/test_stubs.py tests_py/test_text.py
  tests_py/test_client.py tests_py/test_https.py tests_py/test_fork.py tests_py/test_health.py
  tests_py/test_examples.py)

# shellcheck source=scripts/pythons.sh
source scripts/pythons.sh
# shellcheck source=scripts/debian_packages.sh
source scripts/debian_packages.sh
need_debian_packages test_wheels openssl  # test_https.py makes its certificate with it
wheelhouse=$(mkdir -p "${LLMBRIDGE_WHEELHOUSE:-wheelhouse}" && cd "${LLMBRIDGE_WHEELHOUSE:-wheelhouse}" && pwd)
plat=${LLMBRIDGE_WHEEL_PLAT:-manylinux_2_34_x86_64}
cache=${LLMBRIDGE_CACHE:-$HOME/.cache/llmbridge}/wheel-build  # wheels.sh's venvs
tools=$cache/tools

if ! bash scripts/wheels.sh; then
  say "FAILED: the wheels did not build (above)"
  exit 1
fi
say "wheels built at $((SECONDS - start)) s"

tmp=$(mktemp -d /tmp/llmbridge-wheel-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# test_one 3.X: everything for one Python; returns non-zero at the first failure.
test_one() {
  local v=$1 tag=cp${1/./} py venv wheel site where
  py=$(find_python "$v") || { say "$tag: python$v not found"; return 1; }
  wheel=$(ls "$wheelhouse"/llmbridge-*-"$tag"-"$tag"-"$plat".whl 2>/dev/null) ||
    { say "$tag: no $plat wheel in $wheelhouse"; return 1; }
  venv=$tmp/$tag
  # A venv without pip of its own (0.3 s instead of 4): the build venv's pip installs into
  # it, from a local copy of the test extra's wheels (no index queries: 4 s instead of 20),
  # downloaded again when pyproject.toml changes.
  "$py" -m venv --without-pip "$venv" || { say "$tag: could not make a venv"; return 1; }
  local pip=("$cache/$tag/bin/python" -m pip --disable-pip-version-check)
  local deps=$cache/test-deps/$tag stamp
  stamp=$({ cat pyproject.toml; "$py" -VV; } | sha256sum | cut -c1-16)
  if [ "$(cat "$deps/.llmbridge-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$deps"
    "${pip[@]}" download -qq -d "$deps" "$wheel[test]" ||
      { say "$tag: pip could not download the test extra of $(basename "$wheel")"; return 1; }
    rm -f "$deps"/llmbridge-*.whl
    echo "$stamp" >"$deps/.llmbridge-stamp"
  fi
  "${pip[@]}" --python "$venv/bin/python" install -qq --no-compile --no-index \
    --find-links "$deps" "$wheel[test]" ||
    { say "$tag: pip could not install $(basename "$wheel")[test]"; return 1; }
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])') || return 1
  "$tools/bin/python" scripts/wheel_tools.py check "$site" "$plat" || return 1
  "$tools/bin/python" scripts/wheel_tools.py bundled "$wheel" docs/install.md || return 1
  # From outside the checkout, so that nothing but the venv can provide llmbridge.
  where=$(cd "$tmp" && "$venv/bin/python" -c 'import llmbridge; print(llmbridge.__file__)') ||
    { say "$tag: import llmbridge failed"; return 1; }
  case "$where" in
    "$site"/llmbridge/*) ;;
    *) say "$tag: llmbridge imported from $where, not from the venv"; return 1 ;;
  esac
  [ "$(echo "{'a': True,}" | "$venv/bin/llmbridge" repair)" = '{"a":true}' ] ||
    { say "$tag: the llmbridge command did not repair {'a': True,}"; return 1; }
  # The venv's own pytest entry point: unlike python -m pytest it does not put the
  # checkout on sys.path.
  "$venv/bin/pytest" -q -p no:cacheprovider "${subset[@]}"
}

declare -A result
status=0
for v in $llmbridge_pythons; do
  t0=$SECONDS
  say "cp${v/./}: fresh venv, install, checks, pytest ${subset[*]##*/}"
  if test_one "$v"; then
    result[$v]="passed ($((SECONDS - t0)) s)"
  else
    result[$v]="FAILED ($((SECONDS - t0)) s)"
    status=1
  fi
done
for v in $llmbridge_pythons; do
  say "cp${v/./} wheel: ${result[$v]}"
done
say "done in $((SECONDS - start)) s"
exit "$status"
