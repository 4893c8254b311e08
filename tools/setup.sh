#!/usr/bin/env bash
# Installs what sluice needs to build, test and benchmark, from Debian packages
# by name. Idempotent: when everything is present it only checks and returns.
#
#   tools/setup.sh          build + test dependencies
#
# llhttp must be >= 9.2.1 (older versions have public request-smuggling CVEs).
# Debian 13+/Ubuntu 24.04+ ship it as libllhttp-dev; on Debian 12 we fetch
# Debian 13's two .debs by name with apt itself (see docs/building.md).
set -euo pipefail

LLHTTP_MIN=9.2.1
PACKAGES=(
  build-essential cmake pkg-config g++ clang libclang-rt-14-dev clang-format
  libssl-dev libyaml-cpp-dev libc-ares-dev libgtest-dev libgmock-dev
  curl ca-certificates openssl sslscan
  nginx-light haproxy wrk apache2-utils strace python3-websockets python3-matplotlib
  dnsmasq-base prometheus
)

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

log() { printf 'setup: %s\n' "$*" >&2; }

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$p"
    fi
  done
}

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

llhttp_ok() {
  pkg-config --exists libllhttp 2>/dev/null &&
    pkg-config --atleast-version="$LLHTTP_MIN" libllhttp 2>/dev/null
}

# machine_mirror: the mirror URI configured on this machine.
# shellcheck source=lib/apt-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-mirror.sh"

install_llhttp() {
  if llhttp_ok; then
    return
  fi
  apt_update
  # Newer distributions: a plain package whose candidate is recent enough.
  local candidate
  candidate=$(apt-cache policy libllhttp-dev 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] &&
    dpkg --compare-versions "$candidate" ge "$LLHTTP_MIN"; then
    log "installing libllhttp-dev $candidate"
    $SUDO apt-get install -y -qq libllhttp-dev
    llhttp_ok && return
  fi
  # Debian 12: fetch Debian 13's libllhttp-dev + libllhttp9.2 through a
  # temporary source list that reuses this machine's mirror.
  local mirror work
  mirror=$(machine_mirror)
  if [ -z "$mirror" ]; then
    log "cannot find the apt mirror URI in /etc/apt; install llhttp >= $LLHTTP_MIN by hand"
    exit 1
  fi
  work=$(mktemp -d)
  chmod 755 "$work" # apt's download sandbox user must be able to write here
  mkdir -p "$work/sources" "$work/lists/partial" "$work/debs"
  cat >"$work/sources/trixie.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local opts=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$work/sources"
    -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1)
  log "fetching llhttp >= $LLHTTP_MIN from Debian 13 (trixie) via $mirror"
  apt-get "${opts[@]}" update -qq
  (cd "$work/debs" && apt-get "${opts[@]}" download libllhttp-dev libllhttp9.2)
  $SUDO apt-get install -y -qq "$work"/debs/libllhttp9.2_*.deb "$work"/debs/libllhttp-dev_*.deb
  if ! llhttp_ok; then
    log "llhttp is still missing or older than $LLHTTP_MIN after install"
    exit 1
  fi
  rm -rf "$work"
}

main() {
  local missing
  missing=$(missing_packages)
  if [ -n "$missing" ]; then
    apt_update
    # shellcheck disable=SC2086
    log "installing: $(echo $missing)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
  install_llhttp
  # nginx and haproxy are test peers only: keep their system services from
  # holding ports or running in the background.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
  fi
  log "dependencies present (llhttp $(pkg-config --modversion libllhttp))"
}

main "$@"
