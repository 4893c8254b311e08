#!/usr/bin/env bash
# End-to-end: every metric the Grafana dashboard (deploy/grafana/sluice.json)
# queries exists in a real scrape of sluice, and every label it selects or
# groups by is on those metrics; with Prometheus installed (Debian package
# prometheus), every query also runs against a real Prometheus scraping
# sluice and returns data.
#
# sluice runs with every series family the dashboard uses: two workers, a
# respond route, an upstream with a health check in front of a loopback
# nginx, an upstream whose server refuses connections (5xx, connect
# failures), and one reload (generation 2). Loopback only; about 10 s.
#
# SLUICE_DASHBOARD overrides the dashboard file (to check the check: a
# misspelt metric name must make this test fail).
set -euo pipefail
SLUICE=${1:?usage: grafana_dashboard.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
DASHBOARD=${SLUICE_DASHBOARD:-$HERE/../../deploy/grafana/sluice.json}
source "$HERE/lib.bash"

[ -f "$DASHBOARD" ] || { echo "no dashboard at $DASHBOARD" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

port=$(free_port)
admin=$(free_port)
backend=$(free_port)
dead=$(free_port)   # nothing listens here: connect failures, 502s
start_nginx "$backend" "
  server {
    listen 127.0.0.1:$backend;
    location / { default_type text/plain; return 200 \"backend\\n\"; }
    location = /missing { return 404; }
  }"

write_config() {  # $1: the respond route's body
  cat >"$E2E_TMP/sluice.yaml.new" <<YAML
workers: 2
log: { access: off }
admin: { address: 127.0.0.1:$admin }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - match: { path_prefix: /respond }
        respond: { body: "$1\n" }
      - match: { path_prefix: /dead }
        upstream: dead
      - upstream: app
upstreams:
  app:
    servers: [ { address: 127.0.0.1:$backend } ]
    health_check: { path: /, interval: 1s }
  dead:
    servers: [ { address: 127.0.0.1:$dead } ]
    retries: 0
YAML
  mv "$E2E_TMP/sluice.yaml.new" "$E2E_TMP/sluice.yaml"
}
write_config "generation 1"
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
SLUICE_PID=$!
E2E_PIDS+=("$SLUICE_PID")
wait_port "$port"
wait_port "$admin"

PROM_PORT=""
PROMETHEUS=$(command -v prometheus || true)
if [ -n "$PROMETHEUS" ]; then
  PROM_PORT=$(free_port)
  cat >"$E2E_TMP/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: sluice
    static_configs: [ { targets: ['127.0.0.1:$admin'] } ]
YAML
  "$PROMETHEUS" --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$E2E_TMP/prometheus.out" 2>&1 &
  E2E_PIDS+=($!)
  wait_port "$PROM_PORT"
else
  echo "note: prometheus is not installed; the queries are checked against the scrape only" >&2
fi

traffic() {
  for _ in $(seq 1 10); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/respond" || true
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/app" || true
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/missing" || true
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/dead" || true
  done
}
prom_value() {  # prom_value PROMQL: the first result's value, or ""
  curl -sS --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    "$PY" -c 'import json,sys
d=json.load(sys.stdin)["data"]["result"]
print(d[0]["value"][1] if d else "")' 2>/dev/null || true
}

traffic
# Prometheus must see generation 1 before the reload, so that the reload
# annotation (changes(sluice_generation[1m]) > 0) has a change to show.
if [ -n "$PROM_PORT" ]; then
  for _ in $(seq 1 100); do
    [ "$(prom_value 'count_over_time(sluice_generation[1m])')" -ge 2 ] 2>/dev/null && break
    sleep 0.2
  done
fi
# A reload: the generation, reload counters and last-reload gauges move.
write_config "generation 2"
kill -HUP "$SLUICE_PID"
for _ in $(seq 1 100); do
  if [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/respond")" = "generation 2" ]; then break; fi
  sleep 0.1
done
check "the reload serves" "generation 2" "$(curl -s --max-time 2 "http://127.0.0.1:$port/respond")"
traffic
curl -sS --max-time 5 "http://127.0.0.1:$admin/metrics" >"$E2E_TMP/scrape.txt"

set +e
"$PY" - "$DASHBOARD" "$E2E_TMP/scrape.txt" "$PROM_PORT" <<'PYTHON'
import json
import re
import sys
import time
import urllib.parse
import urllib.request

dashboard_path, scrape_path, prom_port = sys.argv[1], sys.argv[2], sys.argv[3]
problems = []

# --- the scrape: sample names and the label names each carries -------------
series = {}  # sample name -> set of label names
for line in open(scrape_path):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
    if not m:
        continue
    labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
    series.setdefault(m.group(1), set()).update(labels)
if "sluice_generation" not in series:
    sys.exit("the scrape has no sluice_generation: not a sluice /metrics page")

# Labels Prometheus adds to every series of a target (not in the scrape).
TARGET_LABELS = {"instance", "job"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "start", "end"}
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def parse(expr):
    """(metric names, label names) a PromQL expression uses. Histogram
    samples keep their suffix: a query names sluice_x_bucket / _sum / _count,
    which is what the scrape has, never the bare family name."""
    e = re.sub(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'", '""', expr)   # strings
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)                           # Grafana variables
    labels = set()
    for group in re.findall(GROUPING, e):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    e = re.sub(GROUPING, " ", e)
    for matchers in re.findall(r"\{([^}]*)\}", e):
        labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)                                  # ranges, subqueries
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if m.group(2) or m.group(1) in KEYWORDS:
            continue                                                   # a function, aggregation or keyword
        names.add(m.group(1))
    labels.discard("__name__")
    return names, labels


def check_query(where, expr):
    names, labels = parse(expr)
    if not names:
        problems.append(f"{where}: no metric name found in {expr!r}")
    for n in sorted(names):
        if n not in series:
            problems.append(f"{where}: metric {n} is not in the scrape")
    have = set().union(*(series.get(n, set()) for n in names)) if names else set()
    for label in sorted(labels - TARGET_LABELS - have):
        problems.append(f"{where}: label {label!r} is on none of {', '.join(sorted(names))}")
    return names


dash = json.load(open(dashboard_path))

# --- the data source: a variable, with an import input ----------------------
inputs = [i for i in dash.get("__inputs", []) if i.get("pluginId") == "prometheus"]
if not inputs:
    problems.append("__inputs has no Prometheus data source (needed for import)")
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
dsvar = variables.get("datasource")
if not dsvar or dsvar.get("type") != "datasource" or dsvar.get("query") != "prometheus":
    problems.append("no templating variable 'datasource' of type datasource (query prometheus)")


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


queries = []  # (where, expr)
n_panels = 0
for p in panels(dash.get("panels", [])):
    if p.get("type") == "row":
        continue
    n_panels += 1
    where = f"panel {p.get('title')!r}"
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        problems.append(f"{where}: datasource is not ${{datasource}}")
    targets = p.get("targets") or []
    if not targets:
        problems.append(f"{where}: no queries")
    for t in targets:
        if (t.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{where} {t.get('refId')}: datasource is not ${{datasource}}")
        if not t.get("expr"):
            problems.append(f"{where} {t.get('refId')}: no expr")
            continue
        queries.append((f"{where} {t.get('refId')}", t["expr"]))
for a in dash.get("annotations", {}).get("list", []):
    if a.get("expr"):
        queries.append((f"annotation {a.get('name')!r}", a["expr"]))

used = set()
for where, expr in queries:
    used |= check_query(where, expr)

# Query variables: label_values(metric{...}, label) and query_result(expr).
label_queries = []  # (where, selector, label)
for v in variables.values():
    if v.get("type") != "query":
        continue
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    where = f"variable ${v.get('name')}"
    m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
    r = re.fullmatch(r"\s*query_result\((.*)\)\s*", q)
    if m:
        names = check_query(where, m.group(1))
        used |= names
        if m.group(2) not in TARGET_LABELS and not any(m.group(2) in series.get(n, ()) for n in names):
            problems.append(f"{where}: label {m.group(2)!r} is on none of {', '.join(sorted(names))}")
        label_queries.append((where, m.group(1), m.group(2)))
    elif r:
        queries.append((where, r.group(1)))
        used |= check_query(where, r.group(1))
    else:
        problems.append(f"{where}: query {q!r} is neither label_values(metric, label) nor query_result(expr)")

print(f"dashboard: {n_panels} panels, {len(queries)} queries, {len(label_queries)} label_values "
      f"variables, {len(used)} metric names, all checked against a scrape of {len(series)} sample names")

# --- a real Prometheus: every query parses and returns data ------------------
if prom_port and not problems:
    base = f"http://127.0.0.1:{prom_port}/api/v1/query"

    def query(expr):
        url = base + "?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    # Enough samples of generation 2 for a 5s rate window (a scrape a second).
    deadline = time.time() + 30
    while time.time() < deadline:
        d = query("min_over_time(sluice_generation[6s]) and count_over_time(sluice_generation[6s]) >= 5")
        res = d.get("data", {}).get("result", [])
        if res and float(res[0]["value"][1]) == 2:
            break
        time.sleep(0.5)
    else:
        problems.append("Prometheus did not collect 5 scrapes of generation 2 in 30 s")

    values = {"__rate_interval": "5s", "__interval": "5s", "__range": "5s"}

    def substitute(expr):
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ".*"), expr)

    for where, expr in queries if not problems else []:
        d = query(substitute(expr))
        if d.get("status") != "success":
            problems.append(f"{where}: Prometheus refused {substitute(expr)!r}: {d.get('error')}")
        elif not d["data"]["result"]:
            problems.append(f"{where}: no data from Prometheus for {substitute(expr)!r}")
    for where, selector, label in label_queries if not problems else []:
        d = query(f"count by ({label}) ({substitute(selector)})")
        if d.get("status") != "success" or not d["data"]["result"]:
            problems.append(f"{where}: no {label} values from Prometheus ({d.get('error', 'empty')})")
    if not problems:
        print(f"prometheus: all {len(queries)} queries and {len(label_queries)} variables parse and return data")

for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PYTHON
rc=$?
set -e
check "the dashboard's queries against a real scrape" 0 "$rc"
if [ "$rc" -ne 0 ] && [ -n "$PROM_PORT" ]; then tail -5 "$E2E_TMP/prometheus.out" >&2; fi
finish
