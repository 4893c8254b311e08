#!/usr/bin/env bash
# End-to-end: TLS with real peers from Debian's packages. HAProxy as a TLS
# client (verify required, SNI) in front of a sluice TLS listener, which
# proxies over TLS (verified: by name, then by IP address) to an nginx TLS
# server; openssl s_client checks the chain sluice serves.
#   curl -> HAProxy --TLS--> sluice --TLS--> nginx
set -euo pipefail
SLUICE=${1:?usage: tls_peers.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

pki="$E2E_TMP/pki"
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -subj /CN=e2e-ca -days 2 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$pki/site.key" -out "$pki/site.csr" \
  -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$pki/site.ext"
openssl x509 -req -in "$pki/site.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -out "$pki/site.crt" -days 2 -extfile "$pki/site.ext" 2>/dev/null

nginx_port=$(free_port)
start_nginx "$nginx_port" "  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $pki/site.crt;
    ssl_certificate_key $pki/site.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { return 200 \"nginx \$ssl_protocol \$http_x_forwarded_proto\"; }
  }"

sluice_port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 2
log: { access: off }
listeners:
  - name: secure
    address: 127.0.0.1:$sluice_port
    tls:
      certificates: [{ cert: $pki/site.crt, key: $pki/site.key }]
    routes:
      - match: { path_prefix: /by-ip }
        upstream: nginx_by_ip
      - upstream: nginx_by_name
upstreams:
  nginx_by_name:
    tls: { ca: $pki/ca.crt, server_name: localhost }
    servers: [{ address: 127.0.0.1:$nginx_port }]
  nginx_by_ip:
    tls: { ca: $pki/ca.crt }
    servers: [{ address: 127.0.0.1:$nginx_port }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$sluice_port"

haproxy_port=$(free_port)
cat >"$E2E_TMP/haproxy.cfg" <<CFG
global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend plain
  bind 127.0.0.1:$haproxy_port
  default_backend sluice
backend sluice
  server s1 127.0.0.1:$sluice_port ssl verify required ca-file $pki/ca.crt sni str(localhost)
CFG
haproxy -db -f "$E2E_TMP/haproxy.cfg" >"$E2E_TMP/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$haproxy_port"

check "HAProxy (TLS, verified) -> sluice -> nginx (TLS, verified by name)" \
  "nginx TLSv1.3 https" "$(curl -sS --max-time 5 "http://127.0.0.1:$haproxy_port/")"
check "... and verified by IP address" \
  "nginx TLSv1.3 https" "$(curl -sS --max-time 5 "http://127.0.0.1:$haproxy_port/by-ip")"
verify=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$sluice_port" \
  -servername localhost -CAfile "$pki/ca.crt" -verify_return_error 2>/dev/null |
  grep -o "Verify return code: [0-9]* ([a-z]*)" | head -1 || true)
check "openssl s_client verifies the chain sluice serves" "Verify return code: 0 (ok)" "$verify"
alpn=$(curl -sS -v --max-time 5 -o /dev/null --cacert "$pki/ca.crt" \
  "https://localhost:$sluice_port/" 2>&1 | grep -io "ALPN[:,] server accepted[ to]* http/1.1" |
  head -1 || true)
check "curl negotiates http/1.1 by ALPN" "1" "$([ -n "$alpn" ] && echo 1 || echo 0)"
finish
