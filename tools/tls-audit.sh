#!/usr/bin/env bash
# TLS audit, slower than the test command: the sslscan checks of
# tests/e2e/tls_sslscan.sh, then testssl.sh (Debian's package `testssl.sh`,
# installed if missing) against a sluice TLS listener on loopback, whose
# summary is printed for docs/tls.md. Not part of CI.
#   bash tools/tls-audit.sh [path/to/sluice]
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE=${1:-build/src/sluice}
for tool in sslscan testssl; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq sslscan testssl.sh; }
done
bash tests/e2e/tls_sslscan.sh "$SLUICE"

tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/site.key" -out "$tmp/site.crt" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 2>/dev/null
port=$(shuf -i 20000-29999 -n 1)
cat >"$tmp/sluice.yaml" <<YAML
workers: 1
log: { access: off }
listeners:
  - address: 127.0.0.1:$port
    tls: { certificates: [{ cert: $tmp/site.crt, key: $tmp/site.key }] }
    routes: [{ respond: { status: 200, body: "ok" } }]
YAML
"$SLUICE" -c "$tmp/sluice.yaml" >"$tmp/sluice.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
testssl --quiet --color 0 --protocols --server-defaults --vulnerable "127.0.0.1:$port" || true
