# Shared helpers for end-to-end tests (sourced, not run). Every server the
# tests start listens on loopback only and is stopped on exit.

E2E_TMP=$(mktemp -d)
E2E_PIDS=()
E2E_FAILED=0

e2e_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT

# A loopback port that was free a moment ago.
# Chosen below the kernel's ephemeral range, so that no outgoing connection
# can be holding it as its local port.
free_port() {
  local port low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    port=$(shuf -i "10000-$((low - 1))" -n 1)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  local i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  return 1
}

check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then
    echo "ok: $1"
  else
    echo "FAIL: $1: expected [$2], got [$3]" >&2
    E2E_FAILED=1
  fi
}

finish() {
  if [ "$E2E_FAILED" -ne 0 ]; then
    echo "--- sluice log ---" >&2
    cat "$E2E_TMP"/*.log >&2 2>/dev/null || true
    exit 1
  fi
  echo "all checks passed"
}

# start_nginx PORT HTTP_BODY: a throwaway nginx (Debian's) on 127.0.0.1:PORT
# in $E2E_TMP/nginx-PORT, with HTTP_BODY as the inside of its http {} block
# (which must listen on PORT); returns once it accepts connections.
start_nginx() {
  local port=$1 body=$2 dir="$E2E_TMP/nginx-$1"
  mkdir -p "$dir/logs" "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
$body
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" &
  E2E_PIDS+=($!)
  wait_port "$port"
}
