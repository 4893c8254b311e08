#!/usr/bin/env bash
# End-to-end: ApacheBench (Debian's apache2-utils) with keep-alive (-k) sends
# HTTP/1.0 requests with `Connection: keep-alive` and waits for the close
# unless the response says `Connection: keep-alive`: sluice must say it, for
# its own responses and for proxied ones (nginx as the backend).
set -euo pipefail
SLUICE=${1:?usage: ab_keepalive.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

backend_port=$(free_port)
mkdir -p "$E2E_TMP/www"
echo -n "from nginx" >"$E2E_TMP/www/index.html"
chmod -R a+rX "$E2E_TMP"
start_nginx "$backend_port" "  server { listen 127.0.0.1:$backend_port; root $E2E_TMP/www; }"

port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 1
log: { access: off }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - match: { path_prefix: /local }
        respond: { status: 200, body: "local\n" }
      - upstream: nginx
upstreams:
  nginx:
    servers: [{ address: 127.0.0.1:$backend_port }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$port"

for path in /local /index.html; do
  # -s 5: ab gives up after 5 s without a response instead of hanging.
  out=$(timeout 20 ab -k -n 200 -c 4 -s 5 "http://127.0.0.1:$port$path" 2>&1) || {
    echo "$out" >&2
    check "ab -k $path finished" "0" "1"
    continue
  }
  check "ab -k $path: complete requests" "200" \
    "$(awk '/^Complete requests:/ {print $3}' <<<"$out")"
  check "ab -k $path: failed requests" "0" "$(awk '/^Failed requests:/ {print $3}' <<<"$out")"
  # Every request went over a kept-alive connection (ab counts them).
  check "ab -k $path: keep-alive requests" "200" \
    "$(awk '/^Keep-Alive requests:/ {print $3}' <<<"$out")"
done
finish
