#!/usr/bin/env bash
# End-to-end: route features with curl in front and nginx behind (nginx
# echoes what it received): matches on method, header and query; strip_prefix
# and rewrite_prefix; request and response header rules with variables;
# RFC 7239 Forwarded; a per-route body limit above and below the global one.
set -euo pipefail
SLUICE=${1:?usage: route_features.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

backend_port=$(free_port)
start_nginx "$backend_port" "  client_max_body_size 10m;
  server {
    listen 127.0.0.1:$backend_port;
    location / {
      add_header X-Backend-Server nginx;
      add_header X-Powered-By php;
      return 200 \"uri=\$request_uri host=\$host client=\$http_x_client env=\$http_x_env debug=\$http_x_debug fwd=\$http_forwarded\\n\";
    }
  }"

port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 1
log: { access: off }
limits: { max_body_bytes: 1k }
headers: { forwarded: add }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - match: { path_prefix: /api/, method: [POST] }
        respond: { status: 200, body: "post to api\n" }
      - match: { path_prefix: /api/, headers: { x-canary: "1" } }
        respond: { status: 200, body: "canary\n" }
      - match: { path_prefix: /api/, query: { version: "2" } }
        upstream: nginx
        rewrite_prefix: /v2/
      - match: { path_prefix: /api/ }
        upstream: nginx
        strip_prefix: /api
        request_headers:
          set: { X-Env: prod, X-Client: "\${client_ip}/\${scheme}/\${host}", Host: internal.example }
          remove: [X-Debug]
        response_headers:
          set: { X-Route: api }
          remove: [X-Powered-By]
      - match: { path_prefix: /upload/ }
        upstream: nginx
        max_body_bytes: 4k
      - upstream: nginx
upstreams:
  nginx:
    servers: [{ address: 127.0.0.1:$backend_port }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$port"
base="http://127.0.0.1:$port"

check "method match" "post to api" "$(curl -sS --max-time 5 -X POST -d x "$base/api/x")"
check "header match" "canary" "$(curl -sS --max-time 5 -H 'X-Canary: 1' "$base/api/x")"
check "query match + rewrite_prefix" "uri=/v2/users?version=2" \
  "$(curl -sS --max-time 5 "$base/api/users?version=2" | awk '{print $1}')"
out=$(curl -sS --max-time 5 -D "$E2E_TMP/headers" -H 'X-Debug: 1' -H 'X-Env: client' \
  "$base/api/users?id=7")
check "strip_prefix" "uri=/users?id=7" "$(awk '{print $1}' <<<"$out")"
check "set Host" "host=internal.example" "$(awk '{print $2}' <<<"$out")"
check "variables" "client=127.0.0.1/http/127.0.0.1" "$(awk '{print $3}' <<<"$out")"
check "set replaces the client's" "env=prod" "$(awk '{print $4}' <<<"$out")"
check "remove" "debug=" "$(awk '{print $5}' <<<"$out")"
check "RFC 7239 Forwarded" 'fwd=for=127.0.0.1;proto=http;host="127.0.0.1:'$port'"' \
  "$(awk '{print $6}' <<<"$out")"
check "response header set" "1" "$(grep -ci '^X-Route: api' "$E2E_TMP/headers")"
check "response header removed" "0" "$(grep -ci '^X-Powered-By' "$E2E_TMP/headers" || true)"
check "other backend headers kept" "1" "$(grep -ci '^X-Backend-Server: nginx' "$E2E_TMP/headers")"
head -c 3000 /dev/zero >"$E2E_TMP/3k"
check "route limit above the global one" "200" \
  "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --data-binary @"$E2E_TMP/3k" "$base/upload/x")"
check "global limit elsewhere" "413" \
  "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --data-binary @"$E2E_TMP/3k" "$base/other")"
head -c 5000 /dev/zero >"$E2E_TMP/5k"
check "route limit" "413" \
  "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --data-binary @"$E2E_TMP/5k" "$base/upload/x")"
check "route limit, chunked" "413" \
  "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
      --data-binary @"$E2E_TMP/5k" "$base/upload/x")"
finish
