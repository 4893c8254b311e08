#!/usr/bin/env bash
# End-to-end: curl (Debian's) against the real sluice binary serving direct
# responses: keep-alive reuse, HEAD, 404, and the default config's validity.
set -euo pipefail
SLUICE=${1:?usage: curl_serve.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - match: { path_prefix: /healthz }
        respond: { status: 200, body: "ok\n", headers: { content-type: text/plain } }
      - match: { host: "*.example.com" }
        respond: { status: 200, body: "wildcard\n" }
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$port"

base="http://127.0.0.1:$port"
check "GET body" "ok" "$(curl -sS --max-time 5 "$base/healthz")"
check "GET status" "200" "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$base/healthz")"
check "content-type" "text/plain" \
  "$(curl -sS --max-time 5 -o /dev/null -w '%{content_type}' "$base/healthz")"
check "HEAD has no body" "0" "$(curl -sS --max-time 5 -I "$base/healthz" -o /dev/null -w '%{size_download}')"
check "wildcard host" "wildcard" \
  "$(curl -sS --max-time 5 -H 'Host: www.example.com' "$base/anything")"
check "no route is 404" "404" "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$base/none")"
# Three URLs in one curl run reuse one connection: curl reports how many it opened.
check "keep-alive reuse" "1" \
  "$(curl -sS --max-time 5 -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
      "$base/healthz" "$base/healthz" "$base/healthz" | awk '{n += $1} END {print n}')"
check "default config validates" "0" \
  "$("$SLUICE" -t -c "$HERE/../../conf/sluice.yaml" >/dev/null 2>&1; echo $?)"
finish
