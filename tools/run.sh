#!/usr/bin/env bash
# Installs what is missing, builds sluice (Release) and runs it in the
# foreground on a config (default: conf/sluice.yaml). Extra arguments go to
# sluice, e.g. tools/run.sh -c my.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=ON >/dev/null
cmake --build build --target sluice -j"$(nproc)"
if [ "$#" -eq 0 ]; then
  set -- -c conf/sluice.yaml
fi
echo "sluice: starting (Ctrl-C stops; try: curl http://127.0.0.1:8080/)" >&2
exec build/src/sluice "$@"
