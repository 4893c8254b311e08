# The Debian mirror URIs this machine's apt is configured with (sourced by
# tools/setup.sh and tools/podman-env.sh). Read from the machine, never
# written into the repository. Either may print nothing.

# The main archive mirror.
machine_mirror() {
  local uri=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    uri=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources |
      grep -v -- '-security' | grep -v 'security\.' | head -n1 || true)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list | grep -v security | head -n1 || true)
  fi
  printf '%s' "$uri"
}

# The security archive mirror.
machine_security_mirror() {
  local uri=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    uri=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources |
      grep -E -- '-security|security\.' | head -n1 || true)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list | grep security | head -n1 || true)
  fi
  printf '%s' "$uri"
}
