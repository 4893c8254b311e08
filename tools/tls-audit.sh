#!/usr/bin/env bash
# Slow TLS audit (not part of the test command): starts sluice with a TLS
# listener on loopback (certificate made here) and runs sslscan (Debian's
# package, installed if missing) against it; fails if anything older than
# TLS 1.2, a cipher without forward secrecy or AEAD, compression or
# client-initiated renegotiation is offered. testssl.sh, if on PATH, runs
# too (its findings are printed, not judged).
#   bash tools/tls-audit.sh [path/to/sluice]
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE=${1:-build/src/sluice}
command -v sslscan >/dev/null || { apt-get update -qq && apt-get install -y -qq sslscan; }
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
out=$(sslscan --no-colour "127.0.0.1:$port")
echo "$out"
fail=0
bad() { echo "AUDIT FAIL: $1" >&2; fail=1; }
grep -Eq "^(SSLv2|SSLv3|TLSv1\.0|TLSv1\.1) +enabled" <<<"$out" && bad "a protocol older than TLS 1.2 is enabled"
grep -Eq "^Accepted.*(RC4|DES|NULL|EXP|MD5|CBC|AES128-SHA |AES256-SHA )" <<<"$out" &&
  bad "a weak or non-AEAD cipher is accepted"
grep -Eqi "^Compression enabled" <<<"$out" && bad "TLS compression is enabled"
grep -Eqi "Insecure session renegotiation supported|Session renegotiation supported" <<<"$out" &&
  bad "renegotiation is supported"
if command -v testssl.sh >/dev/null; then testssl.sh --quiet "127.0.0.1:$port" || true; fi
[ "$fail" -eq 0 ] && echo "tls-audit: passed"
exit "$fail"
