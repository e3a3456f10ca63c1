#!/usr/bin/env bash
# Sets up, builds, runs and tests troupe on Debian 12. Every command first
# installs the Debian packages that are missing (a no-op when all are there).
#
#   bash dev.sh run              build and run the main job: samples/ingest.toml
#   bash dev.sh test             build and run the whole test suite (build/)
#   bash dev.sh test --sanitize  the same under AddressSanitizer and
#                                UndefinedBehaviorSanitizer (build-sanitize/)
#   bash dev.sh fuzz [SECONDS]   build the topology loader's libFuzzer target
#                                with clang (build-fuzz/) and run it on the
#                                samples for SECONDS (default 60)
#   bash dev.sh setup            only install what is missing
#
# Test builds treat warnings as errors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

packages=(g++ meson ninja-build pkg-config python3 libcaf-dev libboost-test-dev openssl
          libtomlplusplus-dev libssl-dev libcli11-dev libcpp-httplib-dev
          nlohmann-json3-dev graphviz clang libclang-rt-14-dev gnuplot-nox)

setup() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
}

# build DIR [meson options...]
build() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --buildtype=release -Dwerror=true "$@" >&2
  fi
  ninja -C "$dir" >&2
}

# Prints the closing line: test cases passed and failed, over all suites.
summarize() {
  python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = t.get("stdout", "") + t.get("stderr", "")
    m = re.search(r"(\d+) test cases? out of (\d+) (passed|failed)", out)
    if m:
        n, total = int(m.group(1)), int(m.group(2))
        if m.group(3) == "passed":
            passed += n; failed += total - n
        else:
            failed += n; passed += total - n
    elif t.get("result") == "OK":
        passed += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed")
PY
}

run_tests() {
  local dir=$1
  shift
  build "$dir" "$@"
  local status=0
  meson test -C "$dir" --print-errorlogs || status=$?
  summarize "$dir"
  return $status
}

cmd=${1:-}
case "$cmd" in
  setup)
    setup
    ;;
  run)
    setup
    build build
    exec build/tools/troupe run samples/ingest.toml "${@:2}"
    ;;
  test)
    setup
    if [ "${2:-}" = "--sanitize" ]; then
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
      export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
      # No bench: timing under sanitizers means nothing, and the plain build
      # runs its smoke test.
      run_tests build-sanitize --buildtype=debugoptimized -Dbench=false \
        -Db_sanitize=address,undefined -Db_lundef=false
    else
      run_tests build
    fi
    ;;
  fuzz)
    setup
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
    if [ ! -f build-fuzz/build.ninja ]; then
      CXX=clang++ meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true \
        -Dtests=false -Dbench=false -Dsamples=false \
        -Db_sanitize=address,undefined -Db_lundef=false >&2
    fi
    ninja -C build-fuzz tests/fuzz/topology_fuzz >&2
    # The seed corpus is the samples and the invalid files of the tests; what
    # the fuzzer adds stays in build-fuzz/corpus for the next run.
    mkdir -p build-fuzz/corpus
    cp samples/*.toml tests/topology/invalid/*.toml build-fuzz/corpus/
    # Under CI a fixed seed and a bound on runs make the run repeatable on a
    # fresh clone (the time bound only cuts it short on a slow machine).
    seed=()
    if [ -n "${CI:-}" ]; then seed=(-seed=1 -runs=300000); fi
    build-fuzz/tests/fuzz/topology_fuzz -max_total_time="${2:-60}" "${seed[@]}" \
      -dict=tests/fuzz/topology.dict -max_len=65536 -timeout=10 \
      -artifact_prefix=build-fuzz/ build-fuzz/corpus
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
