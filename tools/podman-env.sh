#!/usr/bin/env bash
# A private, rootful podman set-up for building and running sluice's image on
# a machine with no Docker engine and no reachable container registry
# (see docs/deployment.md, "Building the image without Docker").
#
# Sourced by tools/docker-smoke.sh; can also be run by hand:
#
#   eval "$(bash tools/podman-env.sh)"     # install, configure, make the base image,
#                                          # then export CONTAINERS_CONF / ..._STORAGE_CONF
#   podman images
#   podman run --network=host ...          # host networking: the default bridge
#                                          # would make podman edit iptables
#
# What it does, idempotently:
#   1. installs podman, runc, catatonit and debootstrap from Debian packages
#      if missing;
#   2. writes a private containers.conf (runtime runc, ulimits within this
#      host's hard limits, cgroupfs, file events/logs: no systemd needed) and
#      storage.conf (overlay, or vfs where overlay cannot mount) under one
#      work folder, $SLUICE_PODMAN_DIR (default /var/tmp/sluice-podman);
#   3. makes the base image debian:trixie-slim locally with debootstrap from
#      the apt mirror configured on this machine, unless it already exists.
#
# The mirror URI is read from /etc/apt at run time; none is written here.
#
# Exit status when run directly: 0 ready; 3 podman cannot run here (the
# reason is printed on stderr as "podman cannot run here: ..."); 1 any other
# failure.

SLUICE_PODMAN_DIR=${SLUICE_PODMAN_DIR:-/var/tmp/sluice-podman}
SLUICE_BASE_SUITE=${SLUICE_BASE_SUITE:-trixie}

penv_log() { printf 'podman-env: %s\n' "$*" >&2; }

# Returns 3 with a reason in PENV_CANNOT_RUN when podman cannot work on this
# machine at all (as opposed to a bug in our set-up or the image).
# (PENV_CANNOT_RUN is read by the scripts that source this one.)
# shellcheck disable=SC2034
PENV_CANNOT_RUN=""
# shellcheck disable=SC2034
penv_cannot_run() {
  PENV_CANNOT_RUN="$*"
  penv_log "podman cannot run here: $*"
  return 3
}

penv_have_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

penv_install_packages() {
  # catatonit: the init of the pause image podman builds for pods (kube play).
  local want=(podman runc catatonit debootstrap ca-certificates curl) missing=() p
  for p in "${want[@]}"; do
    penv_have_pkg "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    penv_cannot_run "needs root to install ${missing[*]} and to run rootful podman"
    return
  fi
  penv_log "installing ${missing[*]}"
  apt-get update -qq || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || return 1
}

# machine_mirror / machine_security_mirror: the mirrors this machine uses.
# shellcheck source=lib/apt-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-mirror.sh"

# Overlay needs a kernel that mounts it on the work folder's file system.
penv_overlay_works() {
  local t
  t=$(mktemp -d "$SLUICE_PODMAN_DIR/overlay-probe.XXXXXX") || return 1
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" \
    "$t/merged" 2>/dev/null; then
    umount "$t/merged"
    rm -rf "$t"
    return 0
  fi
  rm -rf "$t"
  return 1
}

penv_write_config() {
  local dir=$SLUICE_PODMAN_DIR driver nofile
  mkdir -p "$dir/storage" "$dir/run" "$dir/tmp" "$dir/volumes" || return 1
  # The storage driver is fixed when the storage folder is first used:
  # changing it later makes every podman command hang on a driver mismatch,
  # so the choice is recorded and reused.
  if [ -s "$dir/driver" ]; then
    driver=$(cat "$dir/driver")
  elif penv_overlay_works; then
    driver=overlay
  else
    penv_log "overlay does not mount here; using the slower vfs driver"
    driver=vfs
  fi
  echo "$driver" >"$dir/driver"
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  cat >"$dir/storage.conf" <<EOF
# Written by tools/podman-env.sh
[storage]
driver = "$driver"
graphroot = "$dir/storage"
runroot = "$dir/run"
EOF
  cat >"$dir/containers.conf" <<EOF
# Written by tools/podman-env.sh
[containers]
# podman's defaults exceed this host's hard limits
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
# Debian's crun fails on hybrid cgroups ("cgroups in hybrid mode not supported")
runtime = "runc"
# no systemd needed: plain cgroups, events and logs in files
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
EOF
  export CONTAINERS_CONF="$dir/containers.conf"
  export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
}

# Makes debian:$SLUICE_BASE_SUITE-slim locally (skipped when it exists).
penv_base_image() {
  local suite=$SLUICE_BASE_SUITE tag="debian:$SLUICE_BASE_SUITE-slim" mirror security rootfs
  if podman image exists "$tag" 2>/dev/null; then
    penv_log "base image $tag present"
    return 0
  fi
  mirror=$(machine_mirror)
  if [ -z "$mirror" ]; then
    penv_log "cannot find the Debian mirror URI in /etc/apt"
    return 1
  fi
  security=$(machine_security_mirror)
  rootfs="$SLUICE_PODMAN_DIR/rootfs-$suite"
  rm -rf "$rootfs"
  penv_log "debootstrap --variant=minbase $suite from $mirror (once; cached as $tag)"
  if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$SLUICE_PODMAN_DIR/debootstrap.log" 2>&1; then
    penv_log "debootstrap failed; last lines of $SLUICE_PODMAN_DIR/debootstrap.log:"
    tail -n 20 "$SLUICE_PODMAN_DIR/debootstrap.log" >&2
    return 1
  fi
  # apt sources for the image, from this machine's mirrors.
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # Like the official slim images: no package caches, no docs or man pages.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/90-no-recommends"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  if ! tar --numeric-owner -C "$rootfs" -c . |
    podman import -q --change 'CMD ["bash"]' - "$tag" >/dev/null; then
    penv_log "podman import of the $suite root file system failed"
    return 1
  fi
  rm -rf "$rootfs"
  penv_log "base image $tag made"
}

# Checks that podman can start a container at all; on failure says why.
penv_check_runs() {
  local out
  if ! out=$(podman run --rm --pull=never --network=none "debian:$SLUICE_BASE_SUITE-slim" true 2>&1); then
    penv_cannot_run "a trivial container fails: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    return
  fi
}

# All of it. Returns 0, 3 (cannot run here, see PENV_CANNOT_RUN) or 1.
podman_env_setup() {
  local rc
  penv_install_packages || return $?
  if [ "$(id -u)" -ne 0 ]; then
    penv_cannot_run "rootful podman needs root (this set-up does not configure rootless podman)"
    return
  fi
  mkdir -p "$SLUICE_PODMAN_DIR" || return 1
  penv_write_config || return 1
  if ! podman info >/dev/null 2>"$SLUICE_PODMAN_DIR/info.err"; then
    penv_cannot_run "podman info fails: $(tail -n 3 "$SLUICE_PODMAN_DIR/info.err" | tr '\n' ' ')"
    return
  fi
  penv_base_image || return $?
  penv_check_runs
  rc=$?
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  podman_env_setup
  rc=$?
  if [ "$rc" -eq 0 ]; then
    printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF"
    printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$CONTAINERS_STORAGE_CONF"
  fi
  exit "$rc"
fi
