#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 20) from the seed corpus in tests/fuzz/corpus.
# Exits non-zero on the first crash, sanitizer report or broken property;
# the reproducer is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
# FUZZ_BUILD_DIR: an existing clang build configured with -DSLUICE_FUZZ=ON
# -DSLUICE_SANITIZE=ON (tools/test.sh passes its sanitizer build, so that CI
# compiles the sources once for both). Without it, build-fuzz is made here.
build=${FUZZ_BUILD_DIR:-}
if [ -z "$build" ]; then
  build=build-fuzz
  CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON \
    -DSLUICE_SANITIZE=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_WERROR=ON >/dev/null
elif ! grep -q '^SLUICE_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "fuzz: $build is not configured with -DSLUICE_FUZZ=ON" >&2
  exit 1
fi
cmake --build "$build" -j"$(nproc)" --target fuzz_request_parser fuzz_response_parser fuzz_config fuzz_proxy
for target in request_parser response_parser config proxy; do
  corpus_seed="tests/fuzz/corpus/${target%%_parser}"
  work="$build/corpus-$target"
  mkdir -p "$work"
  echo "== fuzz_$target for ${seconds}s"
  status=0
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=5 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/" "$work" "$corpus_seed" \
    >"$build/fuzz_$target.log" 2>&1 || status=$?
  tail -n 8 "$build/fuzz_$target.log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz_$target failed (exit $status); see $build/fuzz_$target.log," \
      "reproducer in $build/" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds}s without a finding"
