#!/usr/bin/env bash
# Runs the tests under AddressSanitizer + UBSan (gcc, -DLLMBRIDGE_SANITIZE=ON):
#  1. the Catch2 suite, built in build/sanitize, through ctest;
#  2. the Python extension, built in build/asan-<wheel tag> and installed into
#     build/asan-site (the normal build and site-packages are untouched), with
#     pytest on the text and client tests and the ASan runtime preloaded.
# Any sanitizer report fails the run (UBSan halts on the first error).
#
#   bash scripts/sanitize.sh                   # both
#   bash scripts/sanitize.sh -k loads          # extra arguments go to pytest
# Reproduce a Python failure: the env lines printed before pytest, then the test id.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${SANITIZE_JOBS:-2}
PY=${PYTHON:-python3}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

echo "sanitize: Catch2 suite in build/sanitize" >&2
generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B build/sanitize "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMBRIDGE_BUILD_TESTS=ON \
  -DLLMBRIDGE_SANITIZE=ON >/dev/null
cmake --build build/sanitize -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/sanitize --output-on-failure -j"$jobs"

echo "sanitize: Python extension in build/asan-site" >&2
# scikit-build-core takes the option and its own build dir as config settings, so this
# build neither reuses nor clobbers build/<wheel tag>.
CMAKE_BUILD_PARALLEL_LEVEL=$jobs "$PY" -m pip install -q --root-user-action=ignore --disable-pip-version-check --no-deps --no-build-isolation \
  --upgrade --target build/asan-site \
  -C cmake.define.LLMBRIDGE_SANITIZE=ON -C cmake.build-type=RelWithDebInfo -C "build-dir=build/asan-{wheel_tag}" .

# The interpreter is not instrumented, so the ASan runtime has to be loaded first, and
# libstdc++ right after it: ASan finds the real __cxa_throw only in a library already
# loaded when it starts ("CHECK failed ... real___cxa_throw" otherwise).
# CPython keeps its interned objects until exit by design: leak reports would be noise.
# PYTHONMALLOC=malloc routes Python's small objects through ASan's allocator too.
asan_rt=$(gcc -print-file-name=libasan.so)
cxx_rt=$(gcc -print-file-name=libstdc++.so.6)
[ -f "$asan_rt" ] || { echo "sanitize: no ASan runtime at '$asan_rt' (Debian package libasan8 / gcc)" >&2; exit 1; }
env_line=(LD_PRELOAD="$asan_rt:$cxx_rt" ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS="$UBSAN_OPTIONS" PYTHONMALLOC=malloc
  PYTHONPATH="$PWD/build/asan-site")
native=$(env "${env_line[@]}" "$PY" -c 'import llmbridge._native as n; print(n.__file__)')
case "$native" in
  "$PWD/build/asan-site/"*) ;;
  *) echo "sanitize: imported $native, not the sanitized build in build/asan-site" >&2; exit 1 ;;
esac
echo "sanitize: ${env_line[*]} $PY -m pytest --capture=sys tests_py/test_text.py tests_py/test_client.py $*" >&2
# --capture=sys: a sanitizer writes its report to file descriptor 2 and exits at once,
# so pytest must not hold that descriptor captured.
env "${env_line[@]}" "$PY" -m pytest -q -p no:cacheprovider --capture=sys tests_py/test_text.py tests_py/test_client.py "$@"
echo "sanitize: no sanitizer reports" >&2
