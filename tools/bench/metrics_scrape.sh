#!/usr/bin/env bash
# Worker CPU per /metrics scrape: starts sluice (2 workers, an admin
# listener, ROUTES respond routes and SERVERS upstream servers, so the
# exposition has a realistic number of series), sends some traffic, then
# SCRAPES requests to /metrics on one keep-alive connection (curl's URL
# globbing) and the same number to /healthz, and reports the workers' CPU
# (utime+stime from /proc/PID/stat, both workers summed) per request of each:
# the difference is what rendering the metrics costs.
#   bash tools/bench/metrics_scrape.sh [path/to/sluice]
# Environment: SCRAPES (2000), ROUTES (20), SERVERS (10).
set -euo pipefail
SLUICE=${1:-build/src/sluice}
SCRAPES=${SCRAPES:-2000}
ROUTES=${ROUTES:-20}
SERVERS=${SERVERS:-10}
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=$(port)
admin=$(port)
{
  echo "workers: 2"
  echo "log: { access: off, level: warn }"
  echo "admin: { address: 127.0.0.1:$admin }"
  echo "listeners:"
  echo "  - name: web"
  echo "    address: 127.0.0.1:$web"
  echo "    routes:"
  for i in $(seq 1 $((ROUTES - 1))); do
    echo "      - match: { path_prefix: /r$i/ }"
    echo "        upstream: app"
  done
  echo "      - respond: { status: 200, body: \"ok\\n\" }"
  echo "upstreams:"
  echo "  app:"
  echo "    servers:"
  for i in $(seq 1 "$SERVERS"); do echo "      - address: 127.0.0.1:$((20000 + i))"; done
} >"$tmp/sluice.yaml"
"$SLUICE" -c "$tmp/sluice.yaml" >"$tmp/sluice.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$admin/healthz" && break
  sleep 0.05
done
curl -s -o /dev/null "http://127.0.0.1:$web/[1-200]"
sleep 0.2
workers=$(cat /proc/"$pid"/task/*/children)

ticks() {  # utime+stime of every worker, in clock ticks
  local total=0 w f
  for w in $workers; do
    f=$(sed 's/.*) //' /proc/"$w"/stat)
    total=$((total + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
measure() {  # measure PATH: µs of worker CPU per request
  local before after
  before=$(ticks)
  curl -s -o /dev/null "http://127.0.0.1:$admin$1?[1-$SCRAPES]"
  after=$(ticks)
  python3 -c "print(f'{($after - $before) / $hz * 1e6 / $SCRAPES:.1f}')"
}
bytes=$(curl -s "http://127.0.0.1:$admin/metrics" | wc -c)
series=$(curl -s "http://127.0.0.1:$admin/metrics" | grep -vc '^#')
metrics_us=$(measure /metrics)
healthz_us=$(measure /healthz)
echo "config: $ROUTES routes, $SERVERS servers; exposition: $bytes bytes, $series samples"
echo "worker CPU per /metrics scrape: $metrics_us us ($SCRAPES scrapes, one keep-alive connection)"
echo "worker CPU per /healthz request: $healthz_us us (the same request path without rendering)"
