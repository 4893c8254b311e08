#!/usr/bin/env bash
# End-to-end: WebSocket through sluice with a real client and server
# (Debian's python3-websockets): echo, ping/pong, close handshake, a 64 MiB
# message to a slow reader in bounded memory, an upstream that refuses the
# upgrade, and a tunnel kept across a reload until shutdown_timeout.
set -euo pipefail
SLUICE=${1:?usage: websocket.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"
PY=/usr/bin/python3
"$PY" -c 'import websockets' 2>/dev/null || { echo "python3-websockets is missing" >&2; exit 1; }

ws_port=$(free_port)
"$PY" "$HERE/websocket_peer.py" server "$ws_port" >"$E2E_TMP/ws-server.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ws_port"

port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 1
shutdown_timeout: 4s
pid_file: $E2E_TMP/sluice.pid
log: { access: off }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - upstream: ws
        upgrade: [websocket]
upstreams:
  ws:
    servers: [{ address: 127.0.0.1:$ws_port }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
sluice_pid=$!
E2E_PIDS+=($sluice_pid)
wait_port "$port"
url="ws://127.0.0.1:$port"

out=$(timeout 60 "$PY" "$HERE/websocket_peer.py" check "$url" echo ping close refuse 2>&1) || true
echo "$out"
check "basic checks" "0" "$(grep -c '^FAIL' <<<"$out" || true)"

# The big message, with the worker's memory sampled while it flows.
worker=$(pgrep -P "$sluice_pid" | head -1)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status")
timeout 90 "$PY" "$HERE/websocket_peer.py" check "$url" big >"$E2E_TMP/big.out" 2>&1 &
big_pid=$!
rss_max=$rss_before
while kill -0 "$big_pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
  [ "$rss" -gt "$rss_max" ] && rss_max=$rss
  sleep 0.1
done
wait "$big_pid" || true
cat "$E2E_TMP/big.out"
check "64 MiB echo" "0" "$(grep -c '^FAIL' "$E2E_TMP/big.out" || true)"
check "64 MiB echo reported" "1" "$(grep -c '^ok: 64 MiB' "$E2E_TMP/big.out" || true)"
growth=$((rss_max - rss_before))
echo "worker RSS grew by ${growth} KiB while 2 x 64 MiB went through"
check "bounded memory (< 16 MiB growth)" "1" "$([ "$growth" -lt 16384 ] && echo 1 || echo 0)"

# A tunnel open across a reload: the old generation keeps it until its
# shutdown_timeout (4 s), then closes it.
coproc HOLD { timeout 40 "$PY" "$HERE/websocket_peer.py" check "$url" hold 2>&1; }
hold_out=""
while IFS= read -r -t 10 line <&"${HOLD[0]}"; do
  hold_out+="$line"$'\n'
  [[ $line == HOLDING ]] && break
done
"$SLUICE" -s reload -c "$E2E_TMP/sluice.yaml" >/dev/null
echo "SLUICE_RELOADED" >&"${HOLD[1]}"
while IFS= read -r -t 20 line <&"${HOLD[0]}"; do hold_out+="$line"$'\n'; done || true
echo "$hold_out"
check "reload checks" "0" "$(grep -c '^FAIL' <<<"$hold_out" || true)"
check "reload checks ran" "3" "$(grep -c '^ok:' <<<"$hold_out" || true)"
finish
