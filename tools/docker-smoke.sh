#!/usr/bin/env bash
# Builds sluice's container image with podman and runs it for real.
#
#   bash tools/docker-smoke.sh            # as root, from anywhere in the repo
#
# Traffic stays on this machine: 127.0.0.1 with --network=host, or a
# container's own loopback (--network=none) for steps e and g.
#   build   the Dockerfile, on a base image debian:trixie-slim made locally
#           with debootstrap (tools/podman-env.sh; cached after the first run)
#   a       a request through the container reaches a loopback nginx backend;
#           the access log goes to the container's stdout; the process runs
#           as the image's non-root user on a read-only root file system
#   b       the mounted config is edited and `podman kill -s HUP` reloads it;
#           a broken config is rejected (file:line:col logged) and the old one
#           keeps serving; `podman exec ... sluice -s reload` reloads too
#   c       the HEALTHCHECK (`sluice health`) passes, and `sluice health`
#           fails against an admin address nobody listens on
#   d       `podman stop` (SIGTERM): /ready turns 503 while requests are still
#           served for drain_delay, an in-flight download completes, and the
#           container exits 0
#   e       the image's own default config serves, passes its HEALTHCHECK and
#           stops with 0 (in a private network namespace: no host port used)
#   f       watch_config: a config directory laid out and updated the way the
#           kubelet does it for a mounted ConfigMap reloads with no signal
#   g       deploy/systemd/sluice.service, unchanged, under systemd booted in a
#           privileged container with no network: starts as a DynamicUser
#           with only CAP_NET_BIND_SERVICE on port 80, `systemctl reload`
#           works and fails on a bad config (still serving), `systemctl stop`
#           ends with success (skipped if systemd cannot boot in a container)
#   h       deploy/kubernetes/ under `podman kube play` (rendered for podman
#           4.3 by tools/lib/kube-play-render.py), in a pod with its own
#           network namespace (--network none): the pod starts as the
#           manifests say (uid 10001, read-only root); the probes' requests
#           (/healthz, /ready on the admin port) answer 200 and podman turned
#           the livenessProbe into a healthcheck on that port; a request
#           through the web listener reaches a backend in the pod's network
#           namespace; HTTPS on the websecure listener with the certificate a
#           kubernetes.io/tls Secret would mount (curl --cacert); the
#           ConfigMap's podman volume rewritten in place is picked up by
#           watch_config and the new route serves; `podman pod stop` drains
#           (/ready 503 while serving, a download in flight completes, exit 0)
#           and `podman kube down` removes the pod
#
# Exit status: 0 all passed, or podman cannot run here (prints
# "SKIP: podman cannot run here: <reason>"); 1 on any failure.
#
# Environment: SLUICE_PODMAN_DIR (podman's work folder, default
# /var/tmp/sluice-podman), SLUICE_IMAGE (default localhost/sluice:smoke),
# SLUICE_SMOKE_CONTEXT (the build context, default the repository root),
# SLUICE_SMOKE_KEEP=1 keeps the temporary folder.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/podman-env.sh
. "$ROOT/tools/podman-env.sh"

IMAGE=${SLUICE_IMAGE:-localhost/sluice:smoke}
CONTEXT=${SLUICE_SMOKE_CONTEXT:-$ROOT}
NAME=sluice-smoke-$$
T_START=$(date +%s)
WORK=""
NGINX_PID=""
CONTAINERS=()
G_RESULT=""
KUBE_YAML=""
KUBE_NAME=sluice-kube-$$
KUBE_NGINX_PID=""

log() { printf 'smoke: %s\n' "$*" >&2; }
elapsed() { echo $(($(date +%s) - $1)); }

dump_logs() {
  local c
  for c in "${CONTAINERS[@]}"; do
    if podman container exists "$c" 2>/dev/null; then
      log "--- last lines of podman logs $c ---"
      podman logs --tail 30 "$c" 2>&1 | sed 's/^/  | /' >&2
    fi
  done
}

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  dump_logs
  exit 1
}

skip() {
  printf 'SKIP: podman cannot run here: %s\n' "$*"
  exit 0
}

cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do
    podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  if [ -n "$KUBE_YAML" ]; then
    podman kube down "$KUBE_YAML" >/dev/null 2>&1 || true
    podman volume rm -f "$KUBE_NAME-config" "$KUBE_NAME-tmp" >/dev/null 2>&1 || true
  fi
  if [ -n "$KUBE_NGINX_PID" ]; then
    kill "$KUBE_NGINX_PID" 2>/dev/null || true
    wait "$KUBE_NGINX_PID" 2>/dev/null || true
  fi
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  if [ -n "$WORK" ] && [ "${SLUICE_SMOKE_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A TCP port no socket uses, below the ephemeral range (so that no outgoing
# connection, ours or anyone's, can be holding it as its source port).
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LOW=15000
PORT_SPAN=$((EPHEMERAL_LOW - PORT_LOW))
[ "$PORT_SPAN" -ge 1000 ] || { PORT_LOW=61000; PORT_SPAN=4000; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((PORT_LOW + RANDOM % PORT_SPAN))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
      USED_PORTS="$USED_PORTS$p "
      echo "$p"
      return 0
    fi
  done
  return 1
}

# http_get URL -> prints "STATUS BODY" (STATUS 000 when nothing answered).
http_get() {
  local out
  out=$(curl -sS --max-time 5 -o - -w '\n%{http_code}' "$1" 2>/dev/null)
  printf '%s %s' "$(printf '%s' "$out" | tail -n 1)" "$(printf '%s' "$out" | sed '$d')"
}

# wait_for SECONDS DESCRIPTION COMMAND... : retries COMMAND every 0.2 s.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "timed out after ${limit}s waiting for: $what"
    fi
    sleep 0.2
  done
}

body_is() { [ "$(http_get "$1")" = "$2" ]; }
running() { [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
# The log is read whole before grep looks: under pipefail, `podman logs |
# grep -q` fails when grep stops at a match while podman still writes (it
# gets SIGPIPE): step h's "no drain in the pod's log" failed so once, with
# the line there.
stdout_has() {
  local out
  out=$(podman logs "$1" 2>/dev/null)
  grep -q -- "$2" <<<"$out"
}
logs_have() {
  local out
  out=$(podman logs "$1" 2>&1)
  grep -q -- "$2" <<<"$out"
}

# ---------------------------------------------------------------------------
# Set-up: packages, podman configuration, base image.
t=$(date +%s)
podman_env_setup
rc=$?
if [ "$rc" -eq 3 ]; then
  skip "$PENV_CANNOT_RUN"
elif [ "$rc" -ne 0 ]; then
  fail "podman set-up failed (tools/podman-env.sh)"
fi
for cmd in curl ss nsenter openssl python3; do
  command -v "$cmd" >/dev/null ||
    fail "$cmd is missing (apt-get install curl iproute2 util-linux openssl python3)"
done
# Debian's python3 (python3-yaml) before any other on PATH, as check-manifests.sh.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  log "installing python3-yaml (step h renders deploy/kubernetes with it)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml \
    >/dev/null 2>&1 || fail "$PY has no PyYAML and python3-yaml does not install"
  PY=/usr/bin/python3
  "$PY" -c 'import yaml' 2>/dev/null || fail "$PY has no PyYAML (apt-get install python3-yaml)"
fi
if ! command -v nginx >/dev/null; then
  log "installing nginx-light (the loopback backend)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light \
    >/dev/null || fail "cannot install nginx-light"
fi
T_SETUP=$(elapsed "$t")
log "podman ready, base image present (${T_SETUP}s)"

WORK=$(mktemp -d /tmp/sluice-smoke.XXXXXX)
chmod 755 "$WORK"

# Without systemd as PID 1, podman cannot schedule periodic health checks
# (it logs an error per container); `podman healthcheck run` still works.
# Podman 4 still tries, and says so on every run and stop: filter that line.
HEALTH_OPTS=()
if [ ! -d /run/systemd/system ]; then
  HEALTH_OPTS=(--health-interval=disable)
fi
podman_q() {
  podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}

# ---------------------------------------------------------------------------
# Build.
t=$(date +%s)
log "building $IMAGE (podman build --pull=never --network=host --format docker)"
# The build stage is tagged too ($IMAGE-build), so that pruning the images
# each rebuild leaves behind keeps its cached toolchain layer.
build() {
  podman build --pull=never --network=host --format docker --target build -t "$IMAGE-build" \
    -f "$CONTEXT/Dockerfile" "$CONTEXT" &&
    podman build --pull=never --network=host --format docker -t "$IMAGE" \
      -f "$CONTEXT/Dockerfile" "$CONTEXT"
}
if ! build >"$WORK/build.log" 2>&1; then
  log "--- compiler/build errors (full log: $WORK/build.log) ---"
  grep -E ': (fatal )?error:|^E: |^Err:|^Error: ' "$WORK/build.log" | head -n 30 >&2
  log "--- last lines ---"
  tail -n 10 "$WORK/build.log" >&2
  SLUICE_SMOKE_KEEP=1
  fail "image build failed"
fi
podman image prune -f >/dev/null 2>&1 || true
T_BUILD=$(elapsed "$t")
IMAGE_SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE in ${T_BUILD}s ($((IMAGE_SIZE / 1000000)) MB)"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] ||
  fail "image does not run as 10001:10001"
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q 'sluice' ||
  fail "image has no HEALTHCHECK (was it built with --format docker?)"

t=$(date +%s)
# ---------------------------------------------------------------------------
# Backend: nginx on loopback, with its own prefix.
BACKEND_PORT=$(free_port) || fail "no free port"
PROXY_PORT=$(free_port) || fail "no free port"
ADMIN_PORT=$(free_port) || fail "no free port"
DEAD_PORT=$(free_port) || fail "no free port"
mkdir -p "$WORK/nginx/tmp" "$WORK/nginx/www" "$WORK/conf"
head -c 1048576 /dev/zero >"$WORK/nginx/www/big"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    root $WORK/nginx/www;
    location = /hello { default_type text/plain; return 200 "hello from nginx\n"; }
    # 1 MiB at 256 KiB/s: a request still in flight ~4 s after it starts.
    location = /big { limit_rate 256k; }
  }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
  >"$WORK/nginx/stdout" 2>&1 &
NGINX_PID=$!
wait_for 10 "nginx on 127.0.0.1:$BACKEND_PORT" body_is "http://127.0.0.1:$BACKEND_PORT/hello" \
  "200 hello from nginx"

# The proxy's config, in a directory mounted read-only at /etc/sluice.
write_config() { # $1: the /hello route (YAML lines, indented for a route list)
  cat >"$WORK/conf/sluice.yaml.new" <<EOF
workers: 1
pid_file: /tmp/sluice.pid
drain_delay: 2s
shutdown_timeout: 10s
admin:
  address: 127.0.0.1:$ADMIN_PORT
log:
  access_format: json
listeners:
  - name: web
    address: 127.0.0.1:$PROXY_PORT
    routes:
$1
      - upstream: backend
upstreams:
  backend:
    servers:
      - address: 127.0.0.1:$BACKEND_PORT
EOF
  chmod 644 "$WORK/conf/sluice.yaml.new"
  # Replace the file the way editors and Kubernetes do: a new inode.
  mv "$WORK/conf/sluice.yaml.new" "$WORK/conf/sluice.yaml"
}
write_config "      - match: { path_prefix: /gen }
        respond: { body: \"generation 1\\n\" }"
chmod 755 "$WORK/conf"
# A config whose admin address nobody listens on, for a failing `sluice health`.
DEAD_PORT2=$(free_port) || fail "no free port"
cat >"$WORK/conf/dead-admin.yaml" <<EOF
admin: { address: "127.0.0.1:$DEAD_PORT" }
listeners:
  - address: "127.0.0.1:$DEAD_PORT2"
    routes: [ { respond: { body: "unused" } } ]
EOF
chmod 644 "$WORK/conf/dead-admin.yaml"

PROXY=http://127.0.0.1:$PROXY_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT

# ---------------------------------------------------------------------------
# (a) A request through the container.
C=$NAME-main
CONTAINERS+=("$C")
podman_q run -d --name "$C" --pull=never --network=host --read-only \
  "${HEALTH_OPTS[@]}" -v "$WORK/conf:/etc/sluice:ro" "$IMAGE" >/dev/null ||
  fail "podman run failed"
deadline=$(($(date +%s) + 20))
until [ "$(http_get "$ADMIN/ready" | cut -d' ' -f1)" = 200 ]; do
  running "$C" || fail "the container exited at start-up"
  [ "$(date +%s)" -lt "$deadline" ] || fail "admin /ready never answered 200 on $ADMIN"
  sleep 0.2
done
[ "$(http_get "$ADMIN/healthz" | cut -d' ' -f1)" = 200 ] || fail "admin /healthz is not 200"
got=$(http_get "$PROXY/hello")
[ "$got" = "200 hello from nginx" ] || fail "(a) request through the proxy: got '$got'"
[ "$(http_get "$PROXY/gen")" = "200 generation 1" ] || fail "(a) respond route: $(http_get "$PROXY/gen")"
uid=$(podman exec "$C" id -u) || fail "podman exec failed"
[ "$uid" = 10001 ] || fail "(a) sluice runs as uid $uid, expected 10001"
# The access log is on stdout, the error log on stderr.
wait_for 5 "an access log line for /hello on stdout" stdout_has "$C" /hello
log "(a) request through the container: ok (uid 10001, read-only root, access log on stdout)"

# ---------------------------------------------------------------------------
# (b) Reload: edit the mounted config, SIGHUP the container.
write_config "      - match: { path_prefix: /gen }
        respond: { body: \"generation 2\\n\" }
      - match: { path_prefix: /hello }
        respond: { body: \"hello from sluice\\n\" }"
podman kill -s HUP "$C" >/dev/null || fail "podman kill -s HUP failed"
wait_for 10 "the reloaded config to serve" body_is "$PROXY/gen" "200 generation 2"
[ "$(http_get "$PROXY/hello")" = "200 hello from sluice" ] || fail "(b) routing change not visible"
log "(b) edit + podman kill -s HUP: the new routing serves"

# A broken config is refused; the running one keeps serving.
cp "$WORK/conf/sluice.yaml" "$WORK/conf/good.yaml"
printf 'workers: 1\nlisteners:\n  - address: 127.0.0.1:99999\n    routes: []\n' \
  >"$WORK/conf/sluice.yaml.new"
chmod 644 "$WORK/conf/sluice.yaml.new"
mv "$WORK/conf/sluice.yaml.new" "$WORK/conf/sluice.yaml"
podman kill -s HUP "$C" >/dev/null || fail "podman kill -s HUP failed"
wait_for 10 "the rejected reload to be logged with file:line:col" \
  logs_have "$C" 'sluice.yaml:3:[0-9]*:'
running "$C" || fail "(b) the container died on a bad config"
[ "$(http_get "$PROXY/gen")" = "200 generation 2" ] || fail "(b) old config no longer serves after a bad reload"
log "(b) a broken config is rejected (logged with file:line:col); the old one keeps serving"

# The Kubernetes story: sluice -s reload inside the container (waits for the outcome).
mv "$WORK/conf/good.yaml" "$WORK/conf/sluice.yaml.tmp"
sed -i 's/generation 2/generation 3/' "$WORK/conf/sluice.yaml.tmp"
mv "$WORK/conf/sluice.yaml.tmp" "$WORK/conf/sluice.yaml"
out=$(podman exec "$C" sluice -s reload -c /etc/sluice/sluice.yaml 2>&1) ||
  fail "(b) podman exec sluice -s reload failed: $out"
wait_for 5 "generation 3" body_is "$PROXY/gen" "200 generation 3"
log "(b) podman exec ... sluice -s reload: ok"

# ---------------------------------------------------------------------------
# (c) The HEALTHCHECK.
out=$(podman healthcheck run "$C" 2>&1) || fail "(c) podman healthcheck run: '$out'"
if podman exec "$C" sluice health -c /etc/sluice/dead-admin.yaml >/dev/null 2>&1; then
  fail "(c) sluice health exits 0 against an admin address nobody listens on"
fi
log "(c) HEALTHCHECK (sluice health): healthy; fails against a dead admin address"

# ---------------------------------------------------------------------------
# (d) podman stop: readiness fails first, serving goes on for drain_delay,
# in-flight requests finish, exit 0.
curl -sS --max-time 30 -o "$WORK/big.out" "$PROXY/big" 2>"$WORK/big.err" &
CURL_PID=$!
sleep 0.5
t_stop=$(date +%s%N)
podman stop -t 30 "$C" >"$WORK/stop.out" 2>&1 &
STOP_PID=$!
deadline=$(($(date +%s) + 3))
until [ "$(http_get "$ADMIN/ready" | cut -d' ' -f1)" = 503 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "(d) /ready did not turn 503 after SIGTERM"
  sleep 0.1
done
got=$(http_get "$PROXY/hello")
[ "$got" = "200 hello from sluice" ] || fail "(d) a request during drain_delay got '$got'"
wait "$STOP_PID" || fail "(d) podman stop failed: $(cat "$WORK/stop.out")"
stop_ms=$((($(date +%s%N) - t_stop) / 1000000))
wait "$CURL_PID" || fail "(d) the in-flight download failed: $(cat "$WORK/big.err")"
size=$(stat -c %s "$WORK/big.out")
[ "$size" = 1048576 ] || fail "(d) the in-flight download got $size bytes, not 1048576"
code=$(podman inspect --format '{{.State.ExitCode}}' "$C")
[ "$code" = 0 ] || fail "(d) the container exited $code after SIGTERM, expected 0"
[ "$stop_ms" -ge 2000 ] || fail "(d) stopped after ${stop_ms} ms, before drain_delay (2 s)"
log "(d) podman stop: /ready 503, still serving during drain_delay, in-flight 1 MiB completed, exit 0 after ${stop_ms} ms"

# ---------------------------------------------------------------------------
# (e) The image's default config, in a private network namespace.
C2=$NAME-default
CONTAINERS+=("$C2")
podman_q run -d --name "$C2" --pull=never --network=none --read-only \
  "${HEALTH_OPTS[@]}" "$IMAGE" >/dev/null || fail "(e) podman run of the default config failed"
# No curl in the image: bash's /dev/tcp, from inside the namespace.
get_inside() {
  podman exec "$C2" timeout 5 bash -c \
    "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET $2 HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && cat <&3"
}
status_inside() { get_inside "$1" "$2" | head -n 1 | grep -q " $3 "; }
wait_for 15 "the default config to answer /ready with 200" status_inside 9901 /ready 200
status_inside 8080 / 200 || fail "(e) GET / on the default config: $(get_inside 8080 / | head -n 1)"
get_inside 8080 / | grep -q 'default configuration' || fail "(e) unexpected default body"
out=$(podman healthcheck run "$C2" 2>&1) || fail "(e) podman healthcheck run (default config): '$out'"
podman_q stop -t 30 "$C2" >/dev/null || fail "(e) podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' "$C2")
[ "$code" = 0 ] || fail "(e) the default-config container exited $code after SIGTERM"
log "(e) default config: serves on :8080, healthy, stops with exit 0"

# ---------------------------------------------------------------------------
# (f) watch_config with a directory laid out the way the kubelet mounts a
# ConfigMap (sluice.yaml -> ..data/sluice.yaml, ..data -> ..<timestamp>), and
# updated the way it updates one (a new timestamped folder, ..data swapped
# atomically): the change serves with no signal sent.
C3=$NAME-watch
CONTAINERS+=("$C3")
W_PROXY_PORT=$(free_port) || fail "no free port"
W_ADMIN_PORT=$(free_port) || fail "no free port"
CM=$WORK/configmap
cm_write() { # $1: version
  local dir="$CM/..$1"
  mkdir -p "$dir"
  cat >"$dir/sluice.yaml" <<EOF
workers: 1
pid_file: /tmp/sluice.pid
watch_config: true
admin: { address: "127.0.0.1:$W_ADMIN_PORT" }
listeners:
  - address: "127.0.0.1:$W_PROXY_PORT"
    routes:
      - respond: { body: "configmap $1\n" }
EOF
  chmod 755 "$dir"
  chmod 644 "$dir/sluice.yaml"
  ln -sfn "..$1" "$CM/..data_tmp"
  mv -T "$CM/..data_tmp" "$CM/..data"
  [ -L "$CM/sluice.yaml" ] || ln -s ..data/sluice.yaml "$CM/sluice.yaml"
}
mkdir -p "$CM"
chmod 755 "$CM"
cm_write v1
podman_q run -d --name "$C3" --pull=never --network=host --read-only \
  "${HEALTH_OPTS[@]}" -v "$CM:/etc/sluice:ro" "$IMAGE" >/dev/null || fail "(f) podman run failed"
wait_for 15 "(f) the watch_config container to serve v1" \
  body_is "http://127.0.0.1:$W_PROXY_PORT/" "200 configmap v1"
cm_write v2
rm -rf "$CM/..v1"
wait_for 15 "(f) the ConfigMap-style update to serve without a signal" \
  body_is "http://127.0.0.1:$W_PROXY_PORT/" "200 configmap v2"
podman_q stop -t 30 "$C3" >/dev/null || fail "(f) podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' "$C3")
[ "$code" = 0 ] || fail "(f) the watch_config container exited $code after SIGTERM"
log "(f) watch_config: a ConfigMap-style ..data swap is picked up with no signal"

# ---------------------------------------------------------------------------
# (g) deploy/systemd/sluice.service, unchanged, under a real systemd: a
# container booting systemd (privileged, so that systemd can build the unit's
# sandbox: namespaces, seccomp, DynamicUser), with no network but its own
# loopback. The image is systemd + sluice's runtime libraries + the binary
# just built.
SD_IMAGE=$IMAGE-systemd
C4=$NAME-systemd
mkdir -p "$WORK/systemd"
cp "$CONTEXT/deploy/systemd/sluice.service" "$CONTEXT/deploy/systemd/sluice.yaml" "$WORK/systemd/"
cat >"$WORK/systemd/Containerfile" <<EOF
FROM debian:$SLUICE_BASE_SUITE-slim
RUN apt-get update --error-on=any \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd libssl3t64 libyaml-cpp0.8 libllhttp9.2 libc-ares2 \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=$IMAGE /usr/local/bin/sluice /usr/local/bin/sluice
COPY sluice.service /etc/systemd/system/sluice.service
COPY sluice.yaml /etc/sluice/sluice.yaml
RUN systemctl enable sluice.service
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/lib/systemd/systemd"]
EOF
podman build --pull=never --network=host --format docker -t "$SD_IMAGE" "$WORK/systemd" \
  >"$WORK/systemd/build.log" 2>&1 || {
  tail -n 15 "$WORK/systemd/build.log" >&2
  fail "(g) building the systemd test image failed"
}
CONTAINERS+=("$C4")
podman_q run -d --name "$C4" --pull=never --network=none --privileged --systemd=always \
  "${HEALTH_OPTS[@]}" "$SD_IMAGE" >/dev/null || fail "(g) podman run of the systemd container failed"
sd() { podman exec "$C4" "$@"; }
# "degraded" is fine: units like systemd-modules-load fail in a container.
sd_booted() {
  case "$(sd systemctl is-system-running 2>/dev/null)" in running | degraded) return 0 ;; esac
  return 1
}
deadline=$(($(date +%s) + 30))
until sd_booted; do
  if [ "$(date +%s)" -ge "$deadline" ] || ! running "$C4"; then
    podman rm -f -t 0 "$C4" >/dev/null 2>&1
    G_RESULT="skipped (systemd does not boot in a container here)"
    break
  fi
  sleep 0.5
done
if [ -z "${G_RESULT:-}" ]; then
  sd_status() { sd systemctl status sluice --no-pager 2>&1 | head -n 20 | sed 's/^/  | /' >&2; }
  sd_fail() { sd_status; sd journalctl -u sluice --no-pager 2>&1 | tail -n 20 | sed 's/^/  | /' >&2; fail "$@"; }
  wait_for 15 "(g) sluice.service active" sd systemctl is-active --quiet sluice
  wait_for 10 "(g) sluice health" sd sluice health -c /etc/sluice/sluice.yaml
  pid=$(sd systemctl show -p MainPID --value sluice)
  status=$(sd cat "/proc/$pid/status")
  uid=$(printf '%s\n' "$status" | awk '/^Uid:/ {print $2}')
  { [ -n "$uid" ] && [ "$uid" != 0 ]; } || sd_fail "(g) the master runs as uid '$uid' (DynamicUser expected)"
  printf '%s\n' "$status" | grep -q '^CapEff:[[:space:]]*0000000000000400$' ||
    sd_fail "(g) effective capabilities are not exactly CAP_NET_BIND_SERVICE: $(printf '%s\n' "$status" | grep CapEff)"
  sd_get() { # PORT PATH -> the status line
    sd timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET $2 HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && head -n 1 <&3"
  }
  line=$(sd_get 80 /)
  case "$line" in HTTP/1.1\ *) ;; *) sd_fail "(g) nothing answers on port 80: '$line'" ;; esac
  sd sed -i 's/retries: 1/retries: 0/' /etc/sluice/sluice.yaml
  sd systemctl reload sluice || sd_fail "(g) systemctl reload failed on a valid config"
  sd sed -i 's/retries: 0/retries: 99/' /etc/sluice/sluice.yaml
  if sd systemctl reload sluice 2>/dev/null; then sd_fail "(g) systemctl reload succeeded on an invalid config"; fi
  sd systemctl is-active --quiet sluice || sd_fail "(g) sluice stopped after a refused reload"
  # (`sluice health` reads the file, now invalid: ask the admin port directly.)
  case "$(sd_get 9901 /healthz)" in *" 200 "*) ;; *) sd_fail "(g) /healthz not 200 after a refused reload" ;; esac
  case "$(sd_get 80 /)" in HTTP/1.1\ *) ;; *) sd_fail "(g) port 80 no longer answers after a refused reload" ;; esac
  sd sed -i 's/retries: 99/retries: 1/' /etc/sluice/sluice.yaml
  sd systemctl stop sluice || sd_fail "(g) systemctl stop failed"
  result=$(sd systemctl show sluice -p Result --value)
  code=$(sd systemctl show sluice -p ExecMainStatus --value)
  { [ "$result" = success ] && [ "$code" = 0 ]; } || sd_fail "(g) stop: Result=$result ExecMainStatus=$code"
  G_RESULT="ok"
  log "(g) systemd unit: starts (DynamicUser uid $uid, CAP_NET_BIND_SERVICE only, port 80), reload ok, bad reload refused and still serving, stop exit 0"
else
  log "(g) systemd unit: $G_RESULT"
fi

# ---------------------------------------------------------------------------
# (h) deploy/kubernetes/ under `podman kube play`. Podman 4.3 runs the
# ConfigMap and Deployment (a pod per replica; Services are skipped), with
# the changes tools/lib/kube-play-render.py lists: our names, 1 replica, the
# image just built, no containerPorts, the Secret volume as a hostPath, the
# placeholder upstream pointed at a backend. --network none: the pod gets
# its own network namespace with only a loopback, so the manifests' 0.0.0.0
# listeners on 8080/8443/9901 are used as shipped and touch no host port.
# The host reaches the pod's loopback with nsenter (curl runs on the host).
t_h=$(date +%s)
KDIR=$WORK/kube
mkdir -p "$KDIR/tls" "$KDIR/nginx/tmp" "$KDIR/nginx/www"
chmod 755 "$KDIR" "$KDIR/tls"
head -c 1048576 /dev/zero >"$KDIR/nginx/www/big"
# What `kubectl create secret tls` would put in the Secret: a certificate and
# its key. The kubelet would make them group 10001 (fsGroup) mode 0440
# (defaultMode); so does this.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=sluice.test -addext subjectAltName=DNS:sluice.test \
  -keyout "$KDIR/tls/tls.key" -out "$KDIR/tls/tls.crt" >"$KDIR/openssl.log" 2>&1 ||
  fail "(h) openssl req failed: $(cat "$KDIR/openssl.log")"
chgrp 10001 "$KDIR/tls/tls.crt" "$KDIR/tls/tls.key"
chmod 0440 "$KDIR/tls/tls.crt" "$KDIR/tls/tls.key"
KUBE_BACKEND=127.0.0.1:18081   # inside the pod's own network namespace
"$PY" "$ROOT/tools/lib/kube-play-render.py" "$CONTEXT/deploy/kubernetes" "$IMAGE" \
  "$KUBE_NAME" "$KUBE_BACKEND" "$KDIR/tls" >"$KDIR/kube.yaml" 2>"$KDIR/render.err" ||
  fail "(h) rendering deploy/kubernetes for podman failed: $(cat "$KDIR/render.err")"
KUBE_YAML=$KDIR/kube.yaml
KPOD=$KUBE_NAME-pod-0
KC=$KPOD-sluice
CONTAINERS+=("$KC")
podman_q kube play --network none "$KUBE_YAML" >"$KDIR/play.out" 2>&1 ||
  fail "(h) podman kube play failed: $(tail -n 5 "$KDIR/play.out")"
infra=$(podman pod inspect --format '{{.InfraContainerID}}' "$KPOD") || fail "(h) no pod $KPOD"
infra_pid=$(podman inspect --format '{{.State.Pid}}' "$infra")
case "$infra_pid" in '' | 0) fail "(h) the pod's infra container is not running" ;; esac
# The backend, in the pod's network namespace (our process, so that the
# namespace outlives the pod's containers while the test looks at the drain).
cat >"$KDIR/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $KDIR/nginx/nginx.pid;
error_log $KDIR/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $KDIR/nginx/tmp/body;
  proxy_temp_path $KDIR/nginx/tmp/proxy;
  fastcgi_temp_path $KDIR/nginx/tmp/fastcgi;
  uwsgi_temp_path $KDIR/nginx/tmp/uwsgi;
  scgi_temp_path $KDIR/nginx/tmp/scgi;
  server {
    listen $KUBE_BACKEND;
    root $KDIR/nginx/www;
    location = /hello { default_type text/plain; return 200 "hello from nginx in the pod\n"; }
    location = /big { limit_rate 256k; }
  }
}
EOF
nsenter --net="/proc/$infra_pid/ns/net" nginx -p "$KDIR/nginx" -c "$KDIR/nginx/nginx.conf" \
  -e "$KDIR/nginx/error.log" >"$KDIR/nginx/stdout" 2>&1 &
KUBE_NGINX_PID=$!
POD_NET=/proc/$KUBE_NGINX_PID/ns/net
# pod_get [CURL ARGS] URL -> "STATUS BODY", from the pod's loopback.
pod_get() {
  local out
  out=$(nsenter --net="$POD_NET" curl -sS --max-time 5 -o - -w '\n%{http_code}' "$@" 2>/dev/null)
  printf '%s %s' "$(printf '%s' "$out" | tail -n 1)" "$(printf '%s' "$out" | sed '$d')"
}
pod_status() { nsenter --net="$POD_NET" curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }
pod_body_is() { [ "$(pod_get "$1")" = "$2" ]; }
pod_status_is() { [ "$(pod_status "$1")" = "$2" ]; }
deadline=$(($(date +%s) + 20))
until pod_status_is http://127.0.0.1:9901/ready 200; do
  running "$KC" || fail "(h) the pod's sluice container is not running"
  [ "$(date +%s)" -lt "$deadline" ] || fail "(h) the pod's /ready never answered 200"
  sleep 0.2
done
[ "$(pod_status http://127.0.0.1:9901/healthz)" = 200 ] || fail "(h) the pod's /healthz is not 200"
# What podman made of the probes: the livenessProbe became a healthcheck on
# the admin port; the readinessProbe has no podman counterpart.
hc=$(podman inspect --format '{{json .Config.Healthcheck}}' "$KC")
case "$hc" in *'9901/healthz'*) ;; *) fail "(h) the livenessProbe did not become a healthcheck on :9901/healthz: $hc" ;; esac
sec=$(podman inspect --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}' "$KC")
[ "$sec" = "10001:10001 true" ] || fail "(h) user and read-only root are '$sec', expected '10001:10001 true'"
wait_for 10 "(h) a request through the pod's web listener" pod_body_is \
  http://127.0.0.1:8080/hello "200 hello from nginx in the pod"
got=$(pod_get --cacert "$KDIR/tls/tls.crt" --resolve sluice.test:8443:127.0.0.1 https://sluice.test:8443/hello)
[ "$got" = "200 hello from nginx in the pod" ] || fail "(h) HTTPS through the pod (curl --cacert): got '$got'"
if nsenter --net="$POD_NET" curl -sS --max-time 5 -o /dev/null --resolve sluice.test:8443:127.0.0.1 \
  https://sluice.test:8443/hello 2>/dev/null; then
  fail "(h) HTTPS succeeded without --cacert: the certificate is not being verified"
fi
log "(h) kube play: pod up as uid 10001 on a read-only root; /healthz and /ready 200; liveness became a podman healthcheck on :9901; HTTP and HTTPS (curl --cacert) through the pod reach the backend"

# The ConfigMap's content lives in a podman volume named after it; podman
# never updates it (no kubelet). Rewrite it in place, as a new file renamed
# over the old one; watch_config must reload with no signal.
mnt=$(podman inspect --format '{{range .Mounts}}{{if eq .Destination "/etc/sluice"}}{{.Name}}{{end}}{{end}}' "$KC")
[ "$mnt" = "$KUBE_NAME-config" ] || fail "(h) /etc/sluice is not the ConfigMap's volume (got '$mnt')"
vol=$(podman volume inspect --format '{{.Mountpoint}}' "$KUBE_NAME-config") || fail "(h) no volume $KUBE_NAME-config"
[ -f "$vol/sluice.yaml" ] || fail "(h) the ConfigMap volume has no sluice.yaml"
[ "$(pod_status http://127.0.0.1:8080/configmap)" = 404 ] || fail "(h) /configmap answers before the change"
"$PY" - "$vol/sluice.yaml" "$vol/.sluice.yaml.new" <<'EOF' || fail "(h) editing the ConfigMap's sluice.yaml failed"
import sys
text = open(sys.argv[1]).read()
anchor = "  - name: web\n    address: 0.0.0.0:8080\n    routes:\n"
assert anchor in text, "the web listener is not where expected"
route = '      - match: { path_prefix: /configmap }\n        respond: { body: "configmap v2\\n" }\n'
open(sys.argv[2], "w").write(text.replace(anchor, anchor + route, 1))
EOF
chmod 644 "$vol/.sluice.yaml.new"
mv "$vol/.sluice.yaml.new" "$vol/sluice.yaml"
wait_for 10 "(h) the changed ConfigMap to serve" pod_body_is http://127.0.0.1:8080/configmap "200 configmap v2"
wait_for 5 "(h) generation 2 in the pod's log" logs_have "$KC" "generation 2 serving"
[ "$(pod_get http://127.0.0.1:8080/hello)" = "200 hello from nginx in the pod" ] ||
  fail "(h) the upstream route no longer serves after the reload"
log "(h) the ConfigMap's volume rewritten in place: watch_config reloaded, the new route serves"

# Stop and remove. `podman kube down` in 4.3 stops pods with a zero timeout
# (SIGKILL at once, exit 137; terminationGracePeriodSeconds is not used), so
# the drain is run with `podman pod stop -t 40` (the grace period) first.
curl_pod_big() { nsenter --net="$POD_NET" curl -sS --max-time 30 -o "$KDIR/big.out" http://127.0.0.1:8080/big; }
curl_pod_big 2>"$KDIR/big.err" &
BIG_PID=$!
sleep 0.5
t_stop=$(date +%s%N)
podman pod stop -t 40 "$KPOD" >"$KDIR/stop.out" 2>&1 &
STOP_PID=$!
deadline=$(($(date +%s) + 3))
until pod_status_is http://127.0.0.1:9901/ready 503; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "(h) the pod's /ready did not turn 503 after SIGTERM"
  sleep 0.1
done
got=$(pod_get http://127.0.0.1:8080/hello)
[ "$got" = "200 hello from nginx in the pod" ] || fail "(h) a request during drain_delay got '$got'"
wait "$STOP_PID" || fail "(h) podman pod stop failed: $(cat "$KDIR/stop.out")"
stop_ms=$((($(date +%s%N) - t_stop) / 1000000))
wait "$BIG_PID" || fail "(h) the download in flight failed: $(cat "$KDIR/big.err")"
size=$(stat -c %s "$KDIR/big.out")
[ "$size" = 1048576 ] || fail "(h) the download in flight got $size bytes, not 1048576"
code=$(podman inspect --format '{{.State.ExitCode}}' "$KC")
[ "$code" = 0 ] || fail "(h) the pod's sluice exited $code, expected 0"
[ "$stop_ms" -ge 5000 ] || fail "(h) stopped after ${stop_ms} ms, before drain_delay (5 s)"
logs_have "$KC" "SIGTERM: not ready" || fail "(h) no drain in the pod's log"
podman kube down "$KUBE_YAML" >"$KDIR/down.out" 2>&1 || fail "(h) podman kube down failed: $(cat "$KDIR/down.out")"
if podman pod exists "$KPOD" 2>/dev/null; then fail "(h) the pod still exists after podman kube down"; fi
# kube down in 4.3 leaves the ConfigMap's and the emptyDir's volumes behind.
podman volume rm -f "$KUBE_NAME-config" "$KUBE_NAME-tmp" >/dev/null 2>&1 ||
  fail "(h) cannot remove the pod's volumes"
KUBE_YAML=""
kill "$KUBE_NGINX_PID" 2>/dev/null || true
wait "$KUBE_NGINX_PID" 2>/dev/null || true
KUBE_NGINX_PID=""
log "(h) podman pod stop: /ready 503, still serving during drain_delay, in-flight 1 MiB completed, exit 0 after ${stop_ms} ms; podman kube down removed the pod ($(elapsed "$t_h")s for step h)"
T_TEST=$(elapsed "$t")

log "timings: set-up ${T_SETUP}s, build ${T_BUILD}s, tests ${T_TEST}s, total $(elapsed "$T_START")s"
if [ "$G_RESULT" = ok ]; then
  echo "docker-smoke: 8 passed, 0 failed"
else
  echo "docker-smoke: 7 passed, 0 failed, 1 skipped"
fi
