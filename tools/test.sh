#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite:
#   1. g++ Release build, warnings as errors, every test (unit, integration, e2e)
#   2. clang++ build with AddressSanitizer + UndefinedBehaviorSanitizer, every test
#   3. formatting check (clang-format, the repo's .clang-format)
#   4. the libFuzzer targets, 20 s each (tools/fuzz.sh)
#   5. deployment manifests check (tools/check-manifests.sh)
#   6. the container image built and run for real with podman (tools/docker-smoke.sh;
#      it says SKIP only when podman cannot run on the machine)
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
jobs=$(nproc)

echo "== format check"
bash tools/check-format.sh

echo "== g++ Release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 300)

echo "== clang++ ASan+UBSan build (-Werror)"
# Also the fuzzing build (-DSLUICE_FUZZ=ON: coverage hooks in the libraries,
# no-ops for the tests), so that the sources are compiled once for both.
CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=ON >/dev/null
cmake --build build-sanitize -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-sanitize && ctest --output-on-failure -j"$jobs" --timeout 300)

echo "== fuzzing (libFuzzer, ASan+UBSan)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} FUZZ_BUILD_DIR=build-sanitize bash tools/fuzz.sh

echo "== deployment manifests"
bash tools/check-manifests.sh build/src/sluice

echo "== container smoke test (podman)"
bash tools/docker-smoke.sh

echo "== all tests passed"
