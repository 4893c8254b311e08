#!/usr/bin/env bash
# sluice benchmark harness: the same wrk load through sluice, nginx and HAProxy,
# side by side in one run, each proxy with ONE worker, all in front of the SAME
# nginx backend, in alternating rounds. See tools/bench/README.md.
#
#   bash tools/bench/run.sh                      # defaults: 3 rounds x 10 s
#   BENCH_DURATION=3s BENCH_ROUNDS=1 bash tools/bench/run.sh
#
# Environment (all optional):
#   SLUICE               sluice binary (default: build/src/sluice)
#   BENCH_DURATION       wrk duration per measured run (10s)
#   BENCH_WARMUP         wrk warm-up before each measured run, not measured (1s; 0 = none)
#   BENCH_ROUNDS         rounds of the throughput scenarios (3)
#   BENCH_CONNECTIONS    wrk connections for small-keepalive (50)
#   BENCH_CONNECTIONS_1M wrk connections for 1MiB (10)
#   BENCH_IDLE_CONNS     idle connections for idle-conns (5000)
#   BENCH_PROXIES        proxies, in this order within a round ("sluice nginx haproxy")
#   BENCH_SCENARIOS      ("idle-conns small-keepalive 1MiB")
#   BENCH_PIN            1 = pin proxies to BENCH_PROXY_CPU and wrk+backend to
#                        BENCH_LOAD_CPU (default 1 when nproc >= 2)
#   BENCH_PROXY_CPU      (0)   BENCH_LOAD_CPU (1)
#   BENCH_OUT            markdown output (tools/bench/results/latest.md)
#   BENCH_KEEP           1 = keep the temporary directory (configs, logs, raw wrk output)
#   BENCH_STRICT         1 = exit 3 when a proxy was skipped or failed
#   BENCH_WAIT_QUIET     seconds to wait, at start and before each measured run,
#                        for other processes to stop using the CPUs; a run they
#                        disturbed anyway is repeated (twice at most)
#                        (0 = only warn; default 0)
#
# All traffic goes to 127.0.0.1. Every process started here is stopped on exit.
# Exit status: 0 = ran (some proxies may be SKIPPED/FAILED, see output),
# 1 = harness failure (missing tool, backend broken, no proxy measurable),
# 3 = BENCH_STRICT=1 and a proxy was skipped or failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- settings --
# The exact command, for the report: every setting that came from the environment.
CMDLINE=""
for var in SLUICE BENCH_DURATION BENCH_WARMUP BENCH_ROUNDS BENCH_CONNECTIONS \
  BENCH_CONNECTIONS_1M BENCH_IDLE_CONNS BENCH_PROXIES BENCH_SCENARIOS BENCH_PIN \
  BENCH_PROXY_CPU BENCH_LOAD_CPU BENCH_OUT BENCH_KEEP BENCH_STRICT BENCH_WAIT_QUIET; do
  if [[ -n ${!var+x} ]]; then CMDLINE+="$var=$(printf '%q' "${!var}") "; fi
done
CMDLINE+="bash tools/bench/run.sh"

SLUICE=${SLUICE:-$ROOT/build/src/sluice}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-1s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
CONNS_1M=${BENCH_CONNECTIONS_1M:-10}
IDLE_CONNS=${BENCH_IDLE_CONNS:-5000}
IDLE_INFLIGHT=32
PROXIES=${BENCH_PROXIES:-sluice nginx haproxy}
SCENARIOS=${BENCH_SCENARIOS:-idle-conns small-keepalive 1MiB}
NPROC=$(nproc)
if [[ $NPROC -ge 2 ]]; then PIN=${BENCH_PIN:-1}; else PIN=${BENCH_PIN:-0}; fi
PROXY_CPU=${BENCH_PROXY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-$HERE/results/latest.md}
KEEP=${BENCH_KEEP:-0}
STRICT=${BENCH_STRICT:-0}
WAIT_QUIET=${BENCH_WAIT_QUIET:-0}

# "10s" / "2m" / "10" -> seconds
to_seconds() {
  local v=$1
  [[ $v =~ ^([0-9]+)([sm]?)$ ]] || die "bad duration '$v' (use e.g. 10s or 2m)"
  if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
[[ $DURATION_S -ge 1 ]] || die "BENCH_DURATION must be at least 1s"
for v in ROUNDS CONNS CONNS_1M IDLE_CONNS PROXY_CPU LOAD_CPU WAIT_QUIET; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
done
[[ $ROUNDS -ge 1 && $CONNS -ge 1 && $CONNS_1M -ge 1 && $IDLE_CONNS -ge 1 ]] ||
  die "rounds and connection counts must be >= 1"
for p in $PROXIES; do
  case $p in sluice | nginx | haproxy) ;; *) die "unknown proxy '$p' in BENCH_PROXIES" ;; esac
done
for s in $SCENARIOS; do
  case $s in idle-conns | small-keepalive | 1MiB) ;; *) die "unknown scenario '$s' in BENCH_SCENARIOS" ;; esac
done
if [[ $PIN == 1 ]] && { [[ $PROXY_CPU -ge $NPROC ]] || [[ $LOAD_CPU -ge $NPROC ]]; }; then
  die "BENCH_PROXY_CPU/BENCH_LOAD_CPU must be < nproc ($NPROC)"
fi
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# ------------------------------------------------------------------- tools --
# nginx and haproxy live in /usr/sbin, which a non-root PATH may lack.
find_tool() {
  local t=$1
  if command -v "$t" >/dev/null 2>&1; then
    command -v "$t"
  elif [[ -x /usr/sbin/$t ]]; then
    echo "/usr/sbin/$t"
  elif [[ -x /sbin/$t ]]; then
    echo "/sbin/$t"
  fi
}
missing=()
declare -A TOOL
for t in nginx haproxy wrk curl taskset timeout pgrep getconf cmp awk sed sort; do
  TOOL[$t]=$(find_tool "$t")
  [[ -n ${TOOL[$t]} ]] || missing+=("$t")
done
if has_scenario idle-conns; then
  TOOL[cc]=$(find_tool cc)
  [[ -n ${TOOL[cc]} ]] || missing+=("cc")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing tools: ${missing[*]}.
  Install them with: bash tools/setup.sh   (installs nginx, haproxy, wrk, curl, build-essential)
  or: apt-get install nginx haproxy wrk curl procps coreutils util-linux gcc"
fi
NGINX=${TOOL[nginx]}
HAPROXY=${TOOL[haproxy]}
WRK=${TOOL[wrk]}
CLK_TCK=$(getconf CLK_TCK)

# Enough descriptors for 5000 idle client connections plus their upstreams.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if has_scenario idle-conns && [[ $NOFILE != unlimited ]] && [[ $NOFILE -lt $((IDLE_CONNS * 2 + 200)) ]]; then
  die "open-files limit $NOFILE is too low for BENCH_IDLE_CONNS=$IDLE_CONNS (needs $((IDLE_CONNS * 2 + 200)))"
fi
# Per-proxy connection limits, inside the open-files limit (HAProxy refuses a
# maxconn whose descriptors exceed it: it needs about 2 per connection).
MAXCONN=9000
NGINX_WORKER_CONNECTIONS=10000
if [[ $NOFILE != unlimited ]] && [[ $NOFILE -lt 19000 ]]; then
  MAXCONN=$(((NOFILE - 200) / 2))
  NGINX_WORKER_CONNECTIONS=$((NOFILE - 200))
fi
NGINX_RLIMIT=$((NGINX_WORKER_CONNECTIONS + 100))
if [[ $NOFILE != unlimited ]] && [[ $NGINX_RLIMIT -gt $NOFILE ]]; then NGINX_RLIMIT=$NOFILE; fi
if has_scenario idle-conns && [[ $MAXCONN -lt $((IDLE_CONNS + 100)) ]]; then
  die "BENCH_IDLE_CONNS=$IDLE_CONNS does not fit the proxies' connection limit $MAXCONN"
fi

# Every process we start is killed by its timeout wrapper after this long,
# even if this script itself is SIGKILLed.
# (2 throughput scenarios x 3 proxies x up to 3 attempts per round)
MAX_LIFE=$((600 + ROUNDS * 2 * 3 * 3 * (DURATION_S + WARMUP_S + 15 + WAIT_QUIET)))

# ------------------------------------------------------- process handling --
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
chmod 755 "$WORK" # nginx workers started by root run as nobody and read files here
SRV_NAMES=()
declare -A WRAP MAIN WORKER PORT STOPSIG SKIPPED FAILED
CLIENT_WRAP=""
IDLE_WRAP=""

# State letter of a process, empty when it is gone (Z = not yet reaped).
proc_state() { sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true; }
proc_alive() {
  local s
  s=$(proc_state "$1")
  [[ -n $s && $s != Z && $s != X ]]
}
# utime + stime (clock ticks) of a whole process (all its threads).
# Both print nothing when the process is gone.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); n = split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat" 2>/dev/null || true; }
# Resident set (KiB): smaps_rollup is exact; VmRSS may lag a little.
rss_kib() {
  local v
  v=$(awk '/^Rss:/ { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null || true)
  [[ -n $v ]] || v=$(awk '/^VmRSS:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true)
  echo "$v"
}

# "busy total" clock ticks of one CPU (N) or of all (empty), from /proc/stat.
cpu_busy_total() {
  awk -v want="cpu$1" '$1 == want { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

pin() { if [[ $PIN == 1 ]]; then echo "taskset -c $1"; fi; }

# calibrate: ms that a fixed CPU-bound loop takes on the proxy CPU right now,
# while the same loop keeps the load CPU busy too (as during a run: the two
# vCPUs of a VM may share a physical core). This machine's speed drifts with
# what else runs on its host; the number goes into the per-round table so that
# drift is visible next to the results.
calibrate() {
  local t0 t1 other=""
  local loop='BEGIN { for (i = 0; i < 5000000; i++) s += i; exit (s < 0) }'
  if [[ $PIN == 1 ]]; then
    taskset -c "$LOAD_CPU" awk "$loop" &
    other=$!
  fi
  t0=$(date +%s%N)
  # shellcheck disable=SC2046
  $(pin "$PROXY_CPU") awk "$loop"
  t1=$(date +%s%N)
  if [[ -n $other ]]; then wait "$other" || true; fi
  echo $(((t1 - t0) / 1000000))
}

# start_server NAME CPU STOPSIGNAL CMD...   (runs CMD under timeout, in its own
# process group, pinned when pinning is on; output to $WORK/NAME.out)
start_server() {
  local name=$1 cpu=$2 sig=$3
  shift 3
  # shellcheck disable=SC2046
  timeout -k 5 "$MAX_LIFE" $(pin "$cpu") "$@" >"$WORK/$name.out" 2>&1 </dev/null &
  WRAP[$name]=$!
  STOPSIG[$name]=$sig
  SRV_NAMES+=("$name")
}

# resolve_pids NAME MODE: MAIN = the command's pid; WORKER = the process that
# serves traffic: MODE child = its only child (nginx master -> worker),
# self = MAIN itself, auto = a child if there is one, else MAIN.
resolve_pids() {
  local name=$1 mode=$2 i pid="" kids
  for ((i = 0; i < 100; i++)); do
    pid=$(pgrep -P "${WRAP[$name]}" | head -n1 || true)
    [[ -n $pid ]] && break
    sleep 0.05
  done
  [[ -n $pid ]] || return 1
  MAIN[$name]=$pid
  WORKER[$name]=$pid
  if [[ $mode == self ]]; then return 0; fi
  for ((i = 0; i < 100; i++)); do
    kids=$(pgrep -P "$pid" || true)
    if [[ -n $kids ]]; then
      [[ $(wc -l <<<"$kids") -eq 1 ]] || {
        log "$name: more than one worker process (${kids//$'\n'/ }); measuring the first"
      }
      WORKER[$name]=$(head -n1 <<<"$kids")
      return 0
    fi
    [[ $mode == auto && $i -ge 10 ]] && return 0
    sleep 0.05
  done
  [[ $mode == child ]] && return 1
  return 0
}

# wait_port NAME PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  local name=$1 port=$2 i
  for ((i = 0; i < 100; i++)); do
    proc_alive "${WRAP[$name]}" || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

stop_server() {
  local name=$1 wrap=${WRAP[$1]:-} main=${MAIN[$1]:-} i
  [[ -n $wrap ]] || return 0
  if [[ -n $main ]] && proc_alive "$main"; then
    kill -s "${STOPSIG[$name]}" "$main" 2>/dev/null || true
  elif proc_alive "$wrap"; then
    kill -TERM "$wrap" 2>/dev/null || true
  fi
  for ((i = 0; i < 50; i++)); do
    proc_alive "$wrap" || break
    sleep 0.1
  done
  # timeout made itself a process-group leader: sweep the whole group.
  if pgrep -g "$wrap" >/dev/null 2>&1; then kill -KILL -- "-$wrap" 2>/dev/null || true; fi
  wait "$wrap" 2>/dev/null || true
  WRAP[$name]=""
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$? i leftover
  trap - EXIT INT TERM
  set +e
  if [[ -n $CLIENT_WRAP ]]; then
    kill -KILL -- "-$CLIENT_WRAP" 2>/dev/null || kill -KILL "$CLIENT_WRAP" 2>/dev/null
    wait "$CLIENT_WRAP" 2>/dev/null
  fi
  if [[ -n $IDLE_WRAP ]]; then
    kill -KILL -- "-$IDLE_WRAP" 2>/dev/null || kill -KILL "$IDLE_WRAP" 2>/dev/null
    wait "$IDLE_WRAP" 2>/dev/null
  fi
  for ((i = ${#SRV_NAMES[@]} - 1; i >= 0; i--)); do stop_server "${SRV_NAMES[i]}"; done
  # Everything we start has $WORK in its command line: nothing may be left.
  leftover=$(pgrep -f -- "$WORK" || true)
  if [[ -n $leftover ]]; then
    log "warning: killing leftover processes: ${leftover//$'\n'/ }"
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $leftover 2>/dev/null
  fi
  if [[ $KEEP == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_client SECONDS CMD...: runs a load client under timeout, in the
# background so that a signal to this script is handled at once.
run_client() {
  local limit=$1 rc=0
  shift
  timeout -k 2 "$limit" "$@" &
  CLIENT_WRAP=$!
  wait "$CLIENT_WRAP" || rc=$?
  CLIENT_WRAP=""
  return "$rc"
}

# ------------------------------------------------------------ quiet check --
# A benchmark on a machine where a build is running measures the build. Sample
# how much CPU is in use before we start anything (percent of one core).
machine_busy_pct() {
  local a b
  a=$(cpu_busy_total "")
  sleep 1
  b=$(cpu_busy_total "")
  awk -v a="$a" -v b="$b" -v hz="$CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", (y[1] - x[1]) / hz * 100 }'
}
BUSY_AT_START=$(machine_busy_pct)
if [[ $BUSY_AT_START -gt 20 && $WAIT_QUIET -gt 0 ]]; then
  log "the CPUs are busy ($BUSY_AT_START% of a core in use); waiting up to $WAIT_QUIET s for them to be quiet"
  deadline=$((SECONDS + WAIT_QUIET))
  while [[ $BUSY_AT_START -gt 20 && $SECONDS -lt $deadline ]]; do
    sleep 4
    BUSY_AT_START=$(machine_busy_pct)
  done
fi
if [[ $BUSY_AT_START -gt 20 ]]; then
  log "WARNING: other processes use $BUSY_AT_START% of a core right now: results will be disturbed (see the 'other processes' column)"
fi

# ------------------------------------------------------------------- ports --
port_free() {
  if command -v ss >/dev/null 2>&1; then
    [[ -z $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  fi
}
pick_ports() {
  local attempt base p ok
  for ((attempt = 0; attempt < 50; attempt++)); do
    base=$((20000 + RANDOM % 9000))
    ok=1
    for ((p = base; p < base + 4; p++)); do port_free "$p" || ok=0; done
    if [[ $ok == 1 ]]; then
      echo "$base"
      return 0
    fi
  done
  return 1
}
BASE_PORT=$(pick_ports) || die "found no 4 free consecutive ports in 20000-29000"
BACKEND_PORT=$BASE_PORT
PORT[sluice]=$((BASE_PORT + 1))
PORT[nginx]=$((BASE_PORT + 2))
PORT[haproxy]=$((BASE_PORT + 3))

# ----------------------------------------------------------------- backend --
mkdir -p "$WORK/www"
SMALL_BODY=$(printf '%0100d' 0 | tr 0 x) # 100 bytes
printf '%s' "$SMALL_BODY" >"$WORK/www/small"
head -c 1048576 /dev/urandom >"$WORK/www/1m"
chmod 755 "$WORK/www"
chmod 644 "$WORK/www/small" "$WORK/www/1m"

nginx_common() { # nginx_common DIR: main-context lines shared by both nginx instances
  local dir=$1
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NGINX_RLIMIT;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections $NGINX_WORKER_CONNECTIONS;
}
EOF
}
nginx_temp_paths() {
  local dir=$1
  cat <<EOF
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
EOF
}

B=$WORK/backend
mkdir -p "$B/tmp"
chmod 755 "$B"
{
  nginx_common "$B"
  cat <<EOF
http {
    access_log off;
    default_type application/octet-stream;
$(nginx_temp_paths "$B")
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        location = /small {
            default_type text/plain;
            return 200 "$SMALL_BODY";
        }
        location = /1m {
            root $WORK/www;
        }
    }
}
EOF
} >"$B/nginx.conf"

log "work dir $WORK; backend 127.0.0.1:$BACKEND_PORT; pinning: $([[ $PIN == 1 ]] && echo "proxies on CPU $PROXY_CPU, wrk+backend on CPU $LOAD_CPU" || echo off)"
start_server backend "$LOAD_CPU" TERM "$NGINX" -p "$B" -e "$B/error.log" -c "$B/nginx.conf"
if ! wait_port backend "$BACKEND_PORT" || ! resolve_pids backend child; then
  cat "$WORK/backend.out" "$B/error.log" >&2 2>/dev/null || true
  die "the backend nginx did not start"
fi

# check_http PORT -> "" when /small and /1m are served right, else the reason.
check_http() {
  local port=$1 code
  code=$(curl -sS -m 5 -o "$WORK/check.small" -w '%{http_code}' "http://127.0.0.1:$port/small" 2>&1) ||
    {
      echo "GET /small failed: $code"
      return 0
    }
  [[ $code == 200 ]] || {
    echo "GET /small answered $code, expected 200"
    return 0
  }
  cmp -s "$WORK/check.small" "$WORK/www/small" || {
    echo "GET /small returned a different body ($(wc -c <"$WORK/check.small") bytes, expected 100)"
    return 0
  }
  code=$(curl -sS -m 10 -o "$WORK/check.1m" -w '%{http_code}' "http://127.0.0.1:$port/1m" 2>&1) ||
    {
      echo "GET /1m failed: $code"
      return 0
    }
  [[ $code == 200 ]] || {
    echo "GET /1m answered $code, expected 200"
    return 0
  }
  cmp -s "$WORK/check.1m" "$WORK/www/1m" || {
    echo "GET /1m returned a different body ($(wc -c <"$WORK/check.1m") bytes, expected 1048576)"
    return 0
  }
}
reason=$(check_http "$BACKEND_PORT")
[[ -z $reason ]] || die "backend check: $reason"

# ----------------------------------------------------------------- proxies --
write_sluice_config() {
  cat >"$WORK/sluice/sluice.yaml" <<EOF
workers: 1
log: { level: warn, error: stderr, access: off }
limits: { max_connections: $MAXCONN, max_requests_per_connection: 0 }
listeners:
  - name: bench
    address: 127.0.0.1:${PORT[sluice]}
    routes:
      - upstream: backend
upstreams:
  backend:
    servers: [ { address: 127.0.0.1:$BACKEND_PORT } ]
    keepalive: { max_idle: 32, idle_timeout: 20s }
EOF
}

write_nginx_config() {
  local d=$WORK/nginx
  {
    nginx_common "$d"
    cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$d")
    keepalive_requests 100000;
    keepalive_timeout 75s;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 32;
        keepalive_requests 100000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # stream 1 MiB responses through memory buffers, never a temp file
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
  } >"$d/nginx.conf"
}

write_haproxy_config() {
  cat >"$WORK/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $MAXCONN

defaults
    mode http
    maxconn $MAXCONN
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:${PORT[haproxy]} backlog 4096
    default_backend backend

backend backend
    server s1 127.0.0.1:$BACKEND_PORT
EOF
}

SLUICE_VERSION="not run"
# start_proxy NAME: starts it and runs the pre-flight check; on failure prints
# "SKIPPED: NAME: reason", stops it and records SKIPPED[NAME].
start_proxy() {
  local name=$1 out reason=""
  mkdir -p "$WORK/$name/tmp"
  chmod 755 "$WORK/$name"
  case $name in
    sluice)
      if [[ ! -x $SLUICE ]]; then
        reason="binary not found at $SLUICE (build it: cmake -S . -B build && cmake --build build --target sluice, or set SLUICE=...)"
      else
        SLUICE_VERSION=$(timeout 5 "$SLUICE" -v 2>&1 | head -n1 || true)
        [[ -n $SLUICE_VERSION ]] || SLUICE_VERSION="unknown ($SLUICE -v printed nothing)"
        write_sluice_config
        if ! out=$(timeout 10 "$SLUICE" -t -c "$WORK/sluice/sluice.yaml" 2>&1); then
          reason="config test failed: $(head -n3 <<<"$out" | tr '\n' ' ')"
        else
          start_server sluice "$PROXY_CPU" INT "$SLUICE" -c "$WORK/sluice/sluice.yaml"
        fi
      fi
      ;;
    nginx)
      write_nginx_config
      start_server nginx "$PROXY_CPU" TERM "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
      ;;
    haproxy)
      write_haproxy_config
      if ! out=$(timeout 10 "$HAPROXY" -c -q -f "$WORK/haproxy/haproxy.cfg" 2>&1); then
        reason="config check failed: $(head -n3 <<<"$out" | tr '\n' ' ')"
      else
        # -db: foreground, no master process: the pid is the one serving process.
        start_server haproxy "$PROXY_CPU" TERM "$HAPROXY" -db -f "$WORK/haproxy/haproxy.cfg"
      fi
      ;;
  esac
  if [[ -z $reason ]]; then
    local mode=auto
    [[ $name == nginx ]] && mode=child
    [[ $name == haproxy ]] && mode=self
    if ! wait_port "$name" "${PORT[$name]}"; then
      if proc_alive "${WRAP[$name]}"; then
        reason="nothing listening on 127.0.0.1:${PORT[$name]} after 10 s"
      else
        local status=0 last
        wait "${WRAP[$name]}" 2>/dev/null || status=$?
        WRAP[$name]=""
        last=$(tail -n3 "$WORK/$name.out" | tr '\n' ' ')
        reason="exited at start-up with status $status, before listening on 127.0.0.1:${PORT[$name]}; output: ${last:-(none)}"
      fi
    elif ! resolve_pids "$name" "$mode"; then
      reason="could not find its worker process"
    else
      reason=$(check_http "${PORT[$name]}")
      if [[ -z $reason ]]; then
        # Keep-alive check: the second request must reuse the connection.
        local reused
        reused=$(curl -sS -m 5 -o /dev/null -o /dev/null -w '%{num_connects}\n' \
          "http://127.0.0.1:${PORT[$name]}/small" "http://127.0.0.1:${PORT[$name]}/small" 2>/dev/null | tail -n1 || true)
        [[ $reused == 0 ]] || log "warning: $name did not keep the client connection alive between two requests"
      fi
    fi
  fi
  if [[ -n $reason ]]; then
    SKIPPED[$name]=$reason
    echo "SKIPPED: $name: $reason"
    if [[ -n ${WRAP[$name]:-} ]]; then stop_server "$name"; fi
    return 1
  fi
  log "$name: 127.0.0.1:${PORT[$name]}, worker pid ${WORKER[$name]} (main ${MAIN[$name]})"
}

ACTIVE=()
for p in $PROXIES; do
  if start_proxy "$p"; then ACTIVE+=("$p"); fi
done
[[ ${#ACTIVE[@]} -gt 0 ]] || die "no proxy passed the pre-flight check; nothing to measure"

# died_how NAME: sets DIED_HOW to the exit status and last output of a server
# whose worker is gone (not in $(...): wait must run in this shell).
died_how() {
  local name=$1 status="" last i
  if [[ -n ${WRAP[$name]:-} ]] && ! proc_alive "${MAIN[$name]}"; then
    # The main process is gone: its timeout wrapper exits right after it.
    for ((i = 0; i < 30; i++)); do
      proc_alive "${WRAP[$name]}" || break
      sleep 0.1
    done
    if ! proc_alive "${WRAP[$name]}"; then
      status=0
      wait "${WRAP[$name]}" 2>/dev/null || status=$?
      WRAP[$name]=""
    fi
  fi
  last=$(tail -n3 "$WORK/$name.out" | tr '\n' ' ')
  if [[ -z $status ]]; then
    DIED_HOW="worker pid ${WORKER[$name]} gone, main process still running; output: ${last:-(none)}"
  elif [[ $status -gt 128 ]]; then
    DIED_HOW="exit status $status (signal $(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))); output: ${last:-(none)}"
  else
    DIED_HOW="exit status $status; output: ${last:-(none)}"
  fi
}

# mark_failed NAME REASON: a proxy that died or broke mid-run leaves the run.
mark_failed() {
  FAILED[$1]=$2
  echo "FAILED: $1: $2"
  local keep=() p
  for p in "${ACTIVE[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  ACTIVE=("${keep[@]}")
}
is_active() { [[ " ${ACTIVE[*]} " == *" $1 "* ]]; }

# --------------------------------------------------------------- idle-conns --
IDLE_TSV=$WORK/idle.tsv
: >"$IDLE_TSV"
if has_scenario idle-conns; then
  "${TOOL[cc]}" -O2 -o "$WORK/idle_conns" "$HERE/idle_conns.c" || die "cannot compile $HERE/idle_conns.c"
  # It runs first, on freshly started proxies, so that heap left free by the
  # load scenarios cannot hide the per-connection cost.
  for p in "${ACTIVE[@]}"; do
    pid=${WORKER[$p]}
    sleep 1
    before=$(rss_kib "$pid")
    if [[ -z $before ]]; then
      died_how "$p"
      mark_failed "$p" "worker exited before idle-conns: $DIED_HOW"
      continue
    fi
    ctl=$WORK/idle-$p.ctl
    rm -f "$ctl"
    mkfifo "$ctl"
    # Opened read-write: never blocks, and never SIGPIPEs us if the client dies.
    exec {CTL_FD}<>"$ctl"
    : >"$WORK/idle-$p.out"
    # shellcheck disable=SC2046
    timeout -k 2 150 $(pin "$LOAD_CPU") "$WORK/idle_conns" -a 127.0.0.1 -p "${PORT[$p]}" \
      -n "$IDLE_CONNS" -c "$IDLE_INFLIGHT" -u /small -t 60 -H 140 \
      <"$ctl" >"$WORK/idle-$p.out" 2>"$WORK/idle-$p.err" {CTL_FD}>&- &
    IDLE_WRAP=$!
    reason="idle client did not report ready within 90 s"
    for ((i = 0; i < 900; i++)); do
      if grep -q '^ready ' "$WORK/idle-$p.out"; then
        reason=""
        break
      fi
      proc_alive "$IDLE_WRAP" || {
        reason="idle client exited early: $(tail -n2 "$WORK/idle-$p.err" | tr '\n' ' ')"
        break
      }
      sleep 0.1
    done
    line=$(grep -m1 '^ready ' "$WORK/idle-$p.out" || true)
    sleep 1
    during=$(rss_kib "$pid")
    echo check >&"$CTL_FD" || true
    for ((i = 0; i < 100; i++)); do
      grep -q '^open ' "$WORK/idle-$p.out" && break
      proc_alive "$IDLE_WRAP" || break
      sleep 0.1
    done
    open_line=$(grep -m1 '^open ' "$WORK/idle-$p.out" || true)
    exec {CTL_FD}>&- # EOF: the client closes every connection and exits
    for ((i = 0; i < 50; i++)); do
      proc_alive "$IDLE_WRAP" || break
      sleep 0.1
    done
    if pgrep -g "$IDLE_WRAP" >/dev/null 2>&1; then kill -KILL -- "-$IDLE_WRAP" 2>/dev/null || true; fi
    wait "$IDLE_WRAP" 2>/dev/null || true
    IDLE_WRAP=""
    sleep 1
    after=$(rss_kib "$pid")
    if [[ -z $after || -z $during ]] || ! proc_alive "$pid"; then
      died_how "$p"
      mark_failed "$p" "worker exited during idle-conns: $DIED_HOW"
      continue
    fi
    ok=$(sed -nE 's/^ready ok=([0-9]+).*/\1/p' <<<"$line")
    failed=$(sed -nE 's/.*failed=([0-9]+).*/\1/p' <<<"$line")
    open=$(sed -nE 's/^open ([0-9]+).*/\1/p' <<<"$open_line")
    ok=${ok:-0} failed=${failed:-?} open=${open:-?}
    if [[ -n $reason || $ok -eq 0 ]]; then
      echo "FAILED: $p: idle-conns: ${reason:-no connection completed its request} (ok=$ok failed=$failed)"
      FAILED[$p]="${FAILED[$p]:-}idle-conns: ${reason:-no connection completed}; "
      continue
    fi
    per=$(awk -v a="$before" -v b="$during" -v n="$ok" 'BEGIN { printf "%.2f", (b - a) / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$ok" "$failed" "$open" "$before" "$during" "$after" "$per" >>"$IDLE_TSV"
    log "idle-conns $p: $ok idle (failed $failed, still open $open), RSS $before -> $during KiB ($per KiB/conn), $after KiB after close"
  done
fi

# -------------------------------------------------------- wrk throughput --
ROWS=$WORK/rows.tsv
: >"$ROWS"
# parse_wrk FILE -> "rps p50_ms p99_ms requests socket_errors non2xx"
parse_wrk() {
  awk '
    function ms(v,   n, u) {
      n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "us") return n / 1000
      if (u == "ms") return n
      if (u == "s") return n * 1000
      if (u == "m") return n * 60000
      return -1
    }
    / requests in / { req = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50% / { p50 = ms($2) }
    /^ +99% / { p99 = ms($2) }
    /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    END {
      if (req == "" || rps == "" || p50 == "" || p99 == "") exit 1
      printf "%s %.3f %.3f %s %d %d\n", rps, p50, p99, req, err, non2xx
    }' "$1"
}

# run_wrk_once SCENARIO ROUND PROXY PATH CONNECTIONS: one warm-up + measured
# run; sets ROW_LINE (empty when the proxy failed) and OTHER_PCT.
run_wrk_once() {
  local sc=$1 round=$2 p=$3 path=$4 conns=$5 pid out parsed rc=0
  local t0 t1 b0 b1 l0 l1 m0 m1 ns0 ns1 rss calib load_cpu=""
  local url="http://127.0.0.1:${PORT[$p]}$path"
  ROW_LINE=""
  OTHER_PCT=0
  pid=${WORKER[$p]}
  out="$WORK/wrk-$sc-$p-r$round.txt"
  [[ $PIN == 1 ]] && load_cpu=$LOAD_CPU
  # shellcheck disable=SC2046
  if [[ $WARMUP_S -gt 0 ]]; then
    run_client $((WARMUP_S + 20)) $(pin "$LOAD_CPU") "$WRK" -t1 -c"$conns" -d"${WARMUP_S}s" "$url" >/dev/null 2>&1 || true
  fi
  calib=$(calibrate)
  t0=$(cpu_ticks "$pid")
  if [[ -z $t0 ]]; then
    died_how "$p"
    mark_failed "$p" "worker exited during $sc warm-up: $DIED_HOW"
    return 0
  fi
  b0=$(cpu_ticks "${WORKER[backend]}")
  l0=$(cpu_busy_total "$load_cpu")
  m0=$(cpu_busy_total "")
  times >"$WORK/times0" # CPU of this shell's reaped children (wrk)
  ns0=$(date +%s%N)
  # shellcheck disable=SC2046
  run_client $((DURATION_S + 30)) $(pin "$LOAD_CPU") "$WRK" -t1 -c"$conns" -d"${DURATION_S}s" --latency "$url" >"$out" 2>&1 || rc=$?
  times >"$WORK/times1"
  ns1=$(date +%s%N)
  m1=$(cpu_busy_total "")
  l1=$(cpu_busy_total "$load_cpu")
  b1=$(cpu_ticks "${WORKER[backend]}")
  t1=$(cpu_ticks "$pid")
  rss=$(rss_kib "$pid")
  if [[ -z $t1 || -z $rss ]] || ! proc_alive "$pid"; then
    died_how "$p"
    mark_failed "$p" "worker exited during $sc round $round: $DIED_HOW"
    return 0
  fi
  [[ -n $b1 ]] || die "the backend nginx worker exited during $sc round $round"
  if [[ $rc -ne 0 ]] || ! parsed=$(parse_wrk "$out"); then
    echo "FAILED: $p: $sc round $round: wrk exit $rc: $(tail -n3 "$out" | tr '\n' ' ')"
    FAILED[$p]="${FAILED[$p]:-}$sc round $round: wrk failed; "
    return 0
  fi
  read -r rps p50 p99 req err non2xx <<<"$parsed"
  local cpu_us proxy_pct load_pct backend_us other_pct children_s
  # `times` line 2: user and system time of reaped children, as XmY.YYYs
  children_s=$(awk 'function s(v,  m) { m = index(v, "m"); return substr(v, 1, m - 1) * 60 + substr(v, m + 1) }
    FNR == 2 { t = s($1) + s($2); if (FILENAME ~ /times0$/) a = t; else b = t }
    END { printf "%.3f", b - a }' "$WORK/times0" "$WORK/times1")
  read -r cpu_us proxy_pct load_pct backend_us other_pct < <(awk -v d=$((t1 - t0)) -v bd=$((b1 - b0)) -v hz="$CLK_TCK" -v n="$req" \
    -v ns=$((ns1 - ns0)) -v l0="$l0" -v l1="$l1" -v m0="$m0" -v m1="$m1" -v kids="$children_s" 'BEGIN {
      split(l0, a, " "); split(l1, b, " "); split(m0, c, " "); split(m1, e, " ")
      secs = ns / 1e9
      # CPU time used on the machine by anything but the proxy worker, the
      # backend worker and wrk: other work (a build, a test) disturbing the run.
      other = (e[1] - c[1]) / hz - d / hz - bd / hz - kids
      if (other < 0) other = 0
      printf "%.2f %.0f %.0f %.2f %.0f\n", (n > 0 ? d * 1e6 / hz / n : 0), (secs > 0 ? d / hz / secs * 100 : 0),
        (b[2] > a[2] ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0), (n > 0 ? bd * 1e6 / hz / n : 0),
        (secs > 0 ? other / secs * 100 : 0) }')
  ROW_LINE=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$sc" "$p" "$round" "$rps" "$p50" "$p99" "$cpu_us" "$rss" \
    "$req" "$err" "$non2xx" "$proxy_pct" "$load_pct" "$backend_us" "$calib" "$other_pct")
  OTHER_PCT=$other_pct
  log "$sc round $round/$ROUNDS $p: $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu_us us CPU/req (proxy CPU $proxy_pct%, load CPU busy $load_pct%, backend $backend_us us/req, other processes $other_pct%), RSS $rss KiB, errors $err, non-2xx $non2xx, calibration $calib ms"
}

# wait_quiet: with BENCH_WAIT_QUIET, wait (at most that long) until other
# processes use less than 20 % of a core.
wait_quiet() {
  [[ $WAIT_QUIET -gt 0 ]] || return 0
  local deadline=$((SECONDS + WAIT_QUIET)) busy
  local start=$SECONDS
  busy=$(machine_busy_pct)
  [[ $busy -gt 20 ]] || return 0
  log "other processes use $busy% of a core; waiting for quiet (at most $WAIT_QUIET s)"
  while [[ $busy -gt 20 && $SECONDS -lt $deadline ]]; do
    sleep 2
    busy=$(machine_busy_pct)
  done
  log "waited $((SECONDS - start)) s; other processes now use $busy% of a core"
}

# run_wrk SCENARIO ROUND PROXY PATH CONNECTIONS: records one row. With
# BENCH_WAIT_QUIET a run that other processes disturbed (> 20 % of a core) is
# repeated, at most twice; the last attempt is kept either way.
run_wrk() {
  local attempt
  for ((attempt = 1; attempt <= 3; attempt++)); do
    wait_quiet
    run_wrk_once "$@"
    [[ -n $ROW_LINE ]] || return 0
    if [[ $WAIT_QUIET -eq 0 || $OTHER_PCT -le 20 || $attempt -eq 3 ]]; then break; fi
    log "$1 round $2 $3: disturbed (other processes $OTHER_PCT% of a core); repeating"
  done
  printf '%s\n' "$ROW_LINE" >>"$ROWS"
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for sc in small-keepalive 1MiB; do
  has_scenario "$sc" || continue
  if [[ $sc == small-keepalive ]]; then path=/small conns=$CONNS; else path=/1m conns=$CONNS_1M; fi
  for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order each round (A B C, B C A, C A B, ...) so that no proxy
    # always runs first or last, when the machine is fresher or more tired.
    read -r -a order <<<"$PROXIES"
    n=${#order[@]}
    for ((j = 0; j < n; j++)); do
      p=${order[$(((j + r - 1) % n))]}
      is_active "$p" || continue
      run_wrk "$sc" "$r" "$p" "$path" "$conns"
    done
  done
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------- report --
# summarize FORMAT (plain | md): medians over rounds, ratios against nginx.
summarize() {
  awk -F'\t' -v fmt="$1" -v proxies="$PROXIES" -v scenarios="small-keepalive 1MiB" '
    function median(key,   n, i, j, t, a) {
      n = cnt[key]
      if (n == 0) return ""
      for (i = 1; i <= n; i++) a[i] = val[key, i]
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(key, v) { cnt[key]++; val[key, cnt[key]] = v }
    function fmtratio(r) { return r == "" ? "n/a" : sprintf("%.2fx", r) }
    {
      k = $1 SUBSEP $2
      seen[k] = 1
      add(k SUBSEP "rps", $4); add(k SUBSEP "p50", $5); add(k SUBSEP "p99", $6); add(k SUBSEP "cpu", $7); add(k SUBSEP "pct", $12)
      if ($8 > rss[k]) rss[k] = $8
      err[k] += $10; non2xx[k] += $11; rounds[k]++
      r_rps[$1, $2, $3] = $4; r_cpu[$1, $2, $3] = $7; has[$1, $2, $3] = 1
      if ($3 > maxround) maxround = $3
    }
    END {
      ns = split(scenarios, S, " "); np = split(proxies, P, " ")
      # Ratios against nginx: the median of per-round ratios (each proxy against
      # the nginx run of the same round), which cancels slow drift of the machine.
      for (s = 1; s <= ns; s++) for (q = 1; q <= np; q++) for (r = 1; r <= maxround; r++) {
        if (!has[S[s], P[q], r] || !has[S[s], "nginx", r]) continue
        k = S[s] SUBSEP P[q]
        if (r_rps[S[s], "nginx", r] > 0) add(k SUBSEP "rrps", r_rps[S[s], P[q], r] / r_rps[S[s], "nginx", r])
        if (r_cpu[S[s], "nginx", r] > 0) add(k SUBSEP "rcpu", r_cpu[S[s], P[q], r] / r_cpu[S[s], "nginx", r])
      }
      if (fmt == "md") {
        print "| scenario | proxy | req/s | req/s vs nginx | p50 ms | p99 ms | CPU µs/req | CPU/req vs nginx | proxy CPU % | RSS KiB | errors | rounds |"
        print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      } else {
        printf "%-16s %-8s %10s %8s %8s %8s %10s %8s %6s %9s %7s %6s\n", "scenario", "proxy", "req/s", "vs nginx", "p50 ms", "p99 ms", "CPU us/req", "vs nginx", "CPU %", "RSS KiB", "errors", "rounds"
      }
      for (s = 1; s <= ns; s++) {
        for (q = 1; q <= np; q++) {
          k = S[s] SUBSEP P[q]
          if (!seen[k]) continue
          rr = fmtratio(median(k SUBSEP "rrps")); rc = fmtratio(median(k SUBSEP "rcpu"))
          e = err[k] + non2xx[k]
          if (fmt == "md")
            printf "| %s | %s | %.0f | %s | %.3f | %.3f | %.2f | %s | %.0f | %d | %d | %d |\n", S[s], P[q], median(k SUBSEP "rps"), rr, median(k SUBSEP "p50"), median(k SUBSEP "p99"), median(k SUBSEP "cpu"), rc, median(k SUBSEP "pct"), rss[k], e, rounds[k]
          else
            printf "%-16s %-8s %10.0f %8s %8.3f %8.3f %10.2f %8s %6.0f %9d %7d %6d\n", S[s], P[q], median(k SUBSEP "rps"), rr, median(k SUBSEP "p50"), median(k SUBSEP "p99"), median(k SUBSEP "cpu"), rc, median(k SUBSEP "pct"), rss[k], e, rounds[k]
        }
      }
    }' "$ROWS"
}

idle_table() {
  awk -F'\t' -v fmt="$1" '
    BEGIN {
      if (fmt == "md") {
        print "| proxy | idle conns | failed | still open at measurement | RSS before KiB | RSS with idle conns KiB | KiB per idle conn | RSS after close KiB |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|"
      } else {
        printf "%-8s %10s %7s %10s %11s %11s %10s %11s\n", "proxy", "idle conns", "failed", "still open", "RSS before", "RSS idle", "KiB/conn", "RSS after"
      }
    }
    {
      if (fmt == "md") printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $8, $7
      else printf "%-8s %10s %7s %10s %11s %11s %10s %11s\n", $1, $2, $3, $4, $5, $6, $8, $7
    }' "$IDLE_TSV"
}

rounds_table() {
  echo "| scenario | round | proxy | req/s | p50 ms | p99 ms | CPU µs/req | proxy CPU % | load CPU busy % | backend CPU µs/req | other processes CPU % | calibration ms | RSS KiB | requests | socket errors | non-2xx |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %.0f | %.3f | %.3f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $3, $2, $4, $5, $6, $7, $12, $13, $14, $16, $15, $8, $9, $10, $11 }' "$ROWS"
}

NGINX_VERSION=$("$NGINX" -v 2>&1 | sed -E 's/^nginx version: nginx\///')
HAPROXY_VERSION=$("$HAPROXY" -v 2>/dev/null | head -n1 | awk '{ print $3 }')
WRK_VERSION=$("$WRK" -v 2>&1 | head -n1 | awk '{ print $2 }' || true)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_TOTAL=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
# (read-only, takes no index lock: others may be using the checkout)
if ! git --no-optional-locks -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null; then
  GIT_REV+=" + uncommitted changes in src/"
fi
if [[ $PIN == 1 ]]; then
  PINNING="proxies on CPU $PROXY_CPU; wrk, the idle-connection client and the backend on CPU $LOAD_CPU"
else
  PINNING="none"
fi

notes() { # SKIPPED/FAILED lines, markdown list
  local p any=0
  for p in $PROXIES; do
    if [[ -n ${SKIPPED[$p]:-} ]]; then
      echo "- **SKIPPED: $p**: ${SKIPPED[$p]}"
      any=1
    fi
    if [[ -n ${FAILED[$p]:-} ]]; then
      echo "- **FAILED: $p**: ${FAILED[$p]}"
      any=1
    fi
  done
  [[ $any == 1 ]] || echo "- none: every proxy ran every scenario"
}

DISTURBANCE="n/a"
DISTURBED=""
if [[ -s $ROWS ]]; then
  read -r other_med other_max < <(awk -F'\t' '{ v[++n] = $16 }
    END { for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
          printf "%.0f %.0f\n", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[n] }' "$ROWS")
  DISTURBANCE="median $other_med%, max $other_max% of a core"
  if [[ $other_max -gt 20 ]]; then
    DISTURBED="other processes used up to $other_max% of a core during measured runs: those rounds are disturbed (see the per-round table)"
  fi
fi

mkdir -p "$(dirname "$OUT")"
{
  echo "# sluice benchmark: sluice vs nginx vs HAProxy"
  echo
  echo "- date: $START_TIME (UTC)"
  echo "- machine: $NPROC CPUs ($CPU_MODEL), $MEM_TOTAL RAM, Linux $(uname -r); load average before/after: $LOADAVG_START / $LOADAVG_END"
  echo "- versions: nginx $NGINX_VERSION, HAProxy $HAPROXY_VERSION, wrk $WRK_VERSION, sluice: $SLUICE_VERSION (git $GIT_REV)"
  echo "- command: \`$CMDLINE\`"
  echo "- settings: $ROUNDS round(s) x $DURATION_S s per proxy and scenario (+${WARMUP_S} s warm-up each), proxies alternating within each round ($PROXIES), the order rotated by one each round; small-keepalive: wrk -t1 -c$CONNS GET /small (100 B); 1MiB: wrk -t1 -c$CONNS_1M GET /1m; idle-conns: $IDLE_CONNS connections"
  echo "- one worker process each, all in front of the same nginx backend; CPU pinning: $PINNING"
  echo "- other processes on the machine: $BUSY_AT_START% of a core in use just before the start; during the measured runs $DISTURBANCE"
  if [[ -n $DISTURBED ]]; then echo "- **WARNING: $DISTURBED**"; fi
  echo
  echo "## Skipped or failed"
  echo
  notes
  echo
  echo "## Throughput and latency (median over rounds)"
  echo
  if [[ -s $ROWS ]]; then summarize md; else echo "(no throughput results)"; fi
  echo
  echo "Values are medians over rounds. Ratios are against nginx: the median over rounds of (proxy / nginx in the same round);"
  echo "req/s above 1 is faster, CPU/req below 1 is cheaper."
  echo "CPU µs/req = (utime+stime of the proxy's worker process over the measured run) / requests completed."
  echo "RSS = the worker's resident set after the run (max over rounds). errors = wrk socket errors + non-2xx/3xx."
  echo "proxy CPU % = the worker's CPU time / wall time of the run (100 = one core saturated). The per-round table adds"
  echo "how busy the load CPU (wrk + backend) was and the backend's CPU µs/req: when the load CPU is near 100 % and the"
  echo "proxy is not, the load side is the limit and req/s understates the faster proxy; CPU µs/req still compares."
  echo
  echo "## Idle keep-alive connections"
  echo
  if [[ -s $IDLE_TSV ]]; then idle_table md; else echo "(not run)"; fi
  echo
  echo "KiB per idle conn = (RSS with the connections open - RSS before) / connections. Kernel socket memory is not in RSS."
  echo
  echo "## Every round"
  echo
  if [[ -s $ROWS ]]; then rounds_table; else echo "(none)"; fi
} >"$OUT"

echo
echo "== sluice benchmark ($START_TIME, $NPROC CPUs, pinning: $PINNING)"
if [[ -n $DISTURBED ]]; then echo "WARNING: $DISTURBED"; fi
for p in $PROXIES; do
  if [[ -n ${SKIPPED[$p]:-} ]]; then echo "SKIPPED: $p: ${SKIPPED[$p]}"; fi
  if [[ -n ${FAILED[$p]:-} ]]; then echo "FAILED: $p: ${FAILED[$p]}"; fi
done
if [[ -s $ROWS ]]; then
  echo
  summarize plain
fi
if [[ -s $IDLE_TSV ]]; then
  echo
  idle_table plain
fi
echo
echo "markdown: $OUT"

if [[ $STRICT == 1 ]] && [[ ${#SKIPPED[@]} -gt 0 || ${#FAILED[@]} -gt 0 ]]; then exit 3; fi
exit 0
