#!/usr/bin/env bash
# End-to-end: the PROXY protocol with HAProxy (Debian's) on both sides of
# sluice. As the sender: curl (from 127.0.0.2) -> HAProxy (send-proxy-v2) ->
# sluice (proxy_protocol: true) -> nginx, which must see 127.0.0.2 in
# X-Forwarded-For. As the receiver: curl -> sluice (send_proxy_protocol: v1,
# then v2) -> HAProxy (accept-proxy) -> nginx, where HAProxy's own idea of the
# client address (%[src]) must be 127.0.0.2.
set -euo pipefail
SLUICE=${1:?usage: haproxy_proxy_protocol.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

nginx_port=$(free_port)
start_nginx "$nginx_port" "  server {
    listen 127.0.0.1:$nginx_port;
    location /xff { return 200 \"\$http_x_forwarded_for\"; }
    location ~ /tls/src\$ { return 200 \"\$http_x_haproxy_src tls=\$http_x_haproxy_tls\"; }
    location ~ /src\$ { return 200 \"\$http_x_haproxy_src\"; }
  }"

sluice_port=$(free_port)        # behind HAProxy: expects PROXY headers
sluice_front_port=$(free_port)  # in front of HAProxy: sends them
haproxy_front_port=$(free_port)
haproxy_v1_port=$(free_port)
haproxy_v2_port=$(free_port)
haproxy_tls_port=$(free_port)
admin_port=$(free_port)
# HAProxy's TLS listener for the PROXY-then-TLS case: a certificate for
# "upstream.test", trusted by sluice as its own CA.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=upstream.test \
  -addext subjectAltName=DNS:upstream.test \
  -keyout "$E2E_TMP/upstream.key" -out "$E2E_TMP/upstream.crt" 2>/dev/null
cat "$E2E_TMP/upstream.crt" "$E2E_TMP/upstream.key" >"$E2E_TMP/upstream.pem"
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 1
log: { access: off }
admin: { address: 127.0.0.1:$admin_port }
trusted_proxies: [127.0.0.1/32]
listeners:
  - name: behind-haproxy
    address: 127.0.0.1:$sluice_port
    proxy_protocol: true
    routes:
      - upstream: nginx
  - name: front
    address: 127.0.0.1:$sluice_front_port
    routes:
      - match: { path_prefix: /v1 }
        upstream: haproxy_v1
      - match: { path_prefix: /tls }
        upstream: haproxy_tls
      - upstream: haproxy_v2
upstreams:
  nginx:
    servers: [{ address: 127.0.0.1:$nginx_port }]
  haproxy_v1:
    send_proxy_protocol: v1
    servers: [{ address: 127.0.0.1:$haproxy_v1_port }]
  haproxy_v2:
    send_proxy_protocol: v2
    servers: [{ address: 127.0.0.1:$haproxy_v2_port }]
  haproxy_tls:
    send_proxy_protocol: v2
    tls: { ca: $E2E_TMP/upstream.crt, server_name: upstream.test }
    health_check: { path: /tls/src, interval: 200ms, timeout: 200ms }
    servers: [{ address: 127.0.0.1:$haproxy_tls_port }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$sluice_port"

cat >"$E2E_TMP/haproxy.cfg" <<CFG
global
  maxconn 100
defaults
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend to_sluice
  mode tcp
  bind 127.0.0.1:$haproxy_front_port
  default_backend sluice
backend sluice
  mode tcp
  server s1 127.0.0.1:$sluice_port send-proxy-v2
frontend from_sluice_v1
  mode http
  bind 127.0.0.1:$haproxy_v1_port accept-proxy
  http-request set-header X-HAProxy-Src %[src]
  default_backend nginx
frontend from_sluice_v2
  mode http
  bind 127.0.0.1:$haproxy_v2_port accept-proxy
  http-request set-header X-HAProxy-Src %[src]
  default_backend nginx
frontend from_sluice_tls
  mode http
  bind 127.0.0.1:$haproxy_tls_port accept-proxy ssl crt $E2E_TMP/upstream.pem
  http-request set-header X-HAProxy-Src %[src]
  http-request set-header X-HAProxy-Tls %[ssl_fc]
  default_backend nginx
backend nginx
  mode http
  server n1 127.0.0.1:$nginx_port
CFG
haproxy -db -f "$E2E_TMP/haproxy.cfg" >"$E2E_TMP/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$haproxy_front_port"
wait_port "$haproxy_v2_port"
wait_port "$haproxy_tls_port"

check "HAProxy send-proxy-v2 -> sluice: client address reaches the backend" "127.0.0.2" \
  "$(curl -sS --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$haproxy_front_port/xff")"
check "sluice send_proxy_protocol v1 -> HAProxy accept-proxy" "127.0.0.2" \
  "$(curl -sS --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$sluice_front_port/v1/src")"
check "sluice send_proxy_protocol v2 -> HAProxy accept-proxy" "127.0.0.2" \
  "$(curl -sS --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$sluice_front_port/src")"
# The PROXY header goes on the raw socket, then TLS: HAProxy with
# `accept-proxy ssl` reads the header first and would refuse it inside TLS.
check "sluice send_proxy_protocol v2 + tls -> HAProxy accept-proxy ssl" "127.0.0.2 tls=1" \
  "$(curl -sS --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$sluice_front_port/tls/src")"
# Active health checks of that server go the same way (a LOCAL header, then
# TLS): a server behind accept-proxy would refuse them otherwise. Probes
# sent before HAProxy started failed; from now on none may.
figure() { # $1: metric name; the haproxy_tls series' value
  curl -sS --max-time 5 "http://127.0.0.1:$admin_port/metrics" |
    awk -v m="$1" '$1 == m "{upstream=\"haproxy_tls\"}" {print $2}'
}
sleep 0.5
checks_before=$(figure sluice_health_checks_total)
failures_before=$(figure sluice_health_check_failures_total)
sleep 1.2
checks_after=$(figure sluice_health_checks_total)
failures_after=$(figure sluice_health_check_failures_total)
check "health checks through PROXY v2 LOCAL + TLS go on" "yes" \
  "$([ "${checks_after:-0}" -ge $((${checks_before:-0} + 3)) ] && echo yes || echo "no: ${checks_before:-none} -> ${checks_after:-none}")"
check "health checks through PROXY v2 LOCAL + TLS pass" "${failures_before:-missing}" "${failures_after:-missing}"
finish
