#!/usr/bin/env bash
# End-to-end: a real Prometheus server (Debian's) scrapes sluice's admin
# /metrics on loopback every second while curl sends traffic; the rate of
# sluice_http_requests_total becomes positive within 60 s, the target is up,
# and a scrape of the 2-worker sluice passes `promtool check metrics`.
set -euo pipefail
SLUICE=${1:?usage: prometheus_scrape.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

PROMETHEUS=$(command -v prometheus || true)
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMETHEUS" ] || [ -z "$PROMTOOL" ]; then
  echo "prometheus/promtool are missing (Debian package prometheus; tools/setup.sh)" >&2
  exit 1
fi

port=$(free_port)
admin=$(free_port)
prom=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 2
log: { access: off }
admin: { address: 127.0.0.1:$admin }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - respond: { status: 200, body: "ok\n" }
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$port"
wait_port "$admin"

cat >"$E2E_TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: ['127.0.0.1:$admin']
YAML
"$PROMETHEUS" --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/tsdb" \
  --web.listen-address="127.0.0.1:$prom" >"$E2E_TMP/prometheus.out" 2>&1 &
E2E_PIDS+=($!)
wait_port "$prom"

# Traffic in the background for the whole test (bounded: 60 s at most).
(
  end=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$end" ]; do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" || true
  done
) &
E2E_PIDS+=($!)

query() {  # query PROMQL: the first result's value, or ""
  curl -sS --max-time 5 -G "http://127.0.0.1:$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys
d=json.load(sys.stdin)["data"]["result"]
print(d[0]["value"][1] if d else "")' 2>/dev/null || true
}

positive=no
rate=""
for _ in $(seq 1 60); do
  rate=$(query 'sum(rate(sluice_http_requests_total{code="2xx"}[5s]))')
  if [ -n "$rate" ] && python3 -c "import sys; sys.exit(0 if float('$rate') > 0 else 1)"; then
    positive=yes
    break
  fi
  sleep 1
done
check "Prometheus sees a positive request rate (last: ${rate:-none})" "yes" "$positive"
check "scrape target is up" "1" "$(query 'up{job="sluice"}')"
check "Prometheus parsed the histogram" "yes" \
  "$([ -n "$(query 'sum(sluice_http_request_duration_seconds_count)')" ] && echo yes || echo no)"

# promtool's linter on a scrape under load (traffic is still running).
curl -sS --max-time 5 "http://127.0.0.1:$admin/metrics" >"$E2E_TMP/scrape.txt"
check "promtool check metrics" "0" \
  "$("$PROMTOOL" check metrics <"$E2E_TMP/scrape.txt" >"$E2E_TMP/promtool.log" 2>&1; echo $?)"
if [ -s "$E2E_TMP/promtool.log" ]; then cat "$E2E_TMP/promtool.log" >&2; fi
check "no sanitizer report in sluice's log" "0" \
  "$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' "$E2E_TMP/sluice.log" || true)"
if [ "$E2E_FAILED" -ne 0 ]; then tail -20 "$E2E_TMP/prometheus.out" >&2; fi
finish
