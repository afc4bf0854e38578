#!/usr/bin/env bash
# Builds the libFuzzer targets (tests_cpp/fuzz/) with clang, ASan and UBSan in
# build/fuzz, replays the saved regressions, then fuzzes each target on a copy of its
# seed corpus. Exits non-zero when a target crashes or breaks one of its invariants,
# and prints the reproducer.
#
#   bash scripts/fuzz.sh                    # 60 s per target (FUZZ_SECONDS=n to change)
#   bash scripts/fuzz.sh fuzz_repair        # only the named targets
#   bash scripts/fuzz.sh --long             # an hour per target, unless FUZZ_SECONDS is set
#   build/fuzz/tests_cpp/fuzz/<target> <file>   # replay one reproducer
#
# The grown corpus stays in build/fuzz/corpus/<target> (reused by later runs); the
# seeds in the repository never change. LLMBRIDGE_FUZZ_ALLOW=name,name lets a run go
# on past invariants that are known to fail (a bug being fixed); unset, every
# violation fails the run; for undefined behaviour the same is
# UBSAN_OPTIONS=suppressions=<file> (lines such as float-cast-overflow:provider.cpp).
# FUZZ_JOBS (default 2) is the build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --long) long=1 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$arg") ;;
    *) echo "fuzz: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) ||
  targets=(fuzz_repair fuzz_fences fuzz_json_value fuzz_response fuzz_stream fuzz_decoder fuzz_schema)
if ((long)); then seconds=${FUZZ_SECONDS:-3600}; else seconds=${FUZZ_SECONDS:-60}; fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {
  echo "fuzz: installing Debian packages: $*" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The core's own build dependencies (scripts/setup.sh installs the same).
need=()
for pkg in libcurl4-openssl-dev libsimdjson-dev cmake; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v clang++ >/dev/null 2>&1 || need+=(clang)
((${#need[@]})) && apt_install "${need[@]}"

# libFuzzer and clang's sanitizer runtimes live in a separate package on Debian
# (libclang-rt-<major>-dev); link a trivial target to see whether they are there.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
probe() {
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
    >"$probe_dir/probe.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cpp" -o "$probe_dir/probe" >/dev/null 2>&1
}
if ! probe; then
  major=$(clang++ -dumpversion | cut -d. -f1)
  apt_install "libclang-rt-${major}-dev"
  probe || { echo "fuzz: clang++ still cannot link -fsanitize=fuzzer (is libclang-rt-${major}-dev installed?)" >&2; exit 1; }
fi

# shellcheck source=scripts/build_env.sh
source scripts/build_env.sh
build=build/fuzz
generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
echo "fuzz: building ${targets[*]} in $build" >&2
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLLMBRIDGE_FUZZ=ON >/dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target "${targets[@]}"

failed=()
for t in "${targets[@]}"; do
  bin=$build/tests_cpp/fuzz/$t
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  log=$build/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$build/logs"
  cp -rn "tests_cpp/fuzz/corpus/$t/." "$corpus/"

  # Inputs that once failed: each must pass before fuzzing starts.
  regressions=(tests_cpp/fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$bin" "${regressions[@]}" >"$build/logs/$t.regressions.log" 2>&1; then
      repro=$(grep '^Running: ' "$build/logs/$t.regressions.log" | tail -1 | cut -d' ' -f2- || true)
      echo "fuzz: $t FAILED on a saved regression: $repro" >&2
      grep -E -A4 'INVARIANT VIOLATED|ERROR: AddressSanitizer|runtime error|ERROR: libFuzzer' \
        "$build/logs/$t.regressions.log" | head -12 >&2 || true
      echo "fuzz:   reproduce: $bin $repro" >&2
      failed+=("$t")
      continue
    fi
  fi

  echo "fuzz: $t for ${seconds}s (log: $log)" >&2
  dict=()
  [ -f "tests_cpp/fuzz/$t.dict" ] && dict=(-dict="tests_cpp/fuzz/$t.dict")
  status=0
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" -max_len=65536 -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?

  # The last status line (DONE at the end of a full run): executions, coverage, corpus.
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^(#[0-9]+)\s+\S+\s+/\1 /; s/ MS: .*//' || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec:\s*//p' "$log" || true)
  echo "fuzz: $t: ${stats:-no stats} (${rate:-?} exec/s on average)" >&2
  allowed=$(sed -n 's/^fuzz: invariant \(\S*\) violated (allowed by.*/\1/p' "$log" | sort -u | tr '\n' ' ' || true)
  [ -n "$allowed" ] && echo "fuzz: $t: violations let through by LLMBRIDGE_FUZZ_ALLOW: $allowed(see $log)" >&2
  if ((status != 0)); then
    repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1 || true)
    echo "fuzz: $t FAILED (exit $status):" >&2
    grep -E -A4 'INVARIANT VIOLATED|ERROR: AddressSanitizer|runtime error|ERROR: libFuzzer|ERROR: LeakSanitizer' \
      "$log" | head -12 >&2 || true
    echo "fuzz:   reproducer: ${repro:-see $log}" >&2
    [ -n "$repro" ] && echo "fuzz:   reproduce: $bin $repro" >&2
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all targets passed (${seconds}s each)" >&2
