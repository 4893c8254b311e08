#!/usr/bin/env bash
# End-to-end: a protocol scan of a sluice TLS listener with sslscan
# (Debian's package). Fails if anything older than TLS 1.2, a weak or
# non-AEAD suite, compression or renegotiation is offered, or if SNI does
# not pick the certificate for the name asked (RSA for a.test, ECDSA for
# c.test).
set -euo pipefail
SLUICE=${1:?usage: tls_sslscan.sh PATH_TO_SLUICE}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.bash"

pki="$E2E_TMP/pki"
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/a.key" -out "$pki/a.crt" \
  -subj /CN=a.test -addext subjectAltName=DNS:a.test -days 2 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/c.key" \
  -out "$pki/c.crt" -subj /CN=c.test -addext subjectAltName=DNS:c.test -days 2 2>/dev/null

port=$(free_port)
cat >"$E2E_TMP/sluice.yaml" <<YAML
workers: 1
log: { access: off }
listeners:
  - address: 127.0.0.1:$port
    tls:
      certificates:
        - { cert: $pki/a.crt, key: $pki/a.key }
        - { cert: $pki/c.crt, key: $pki/c.key }
    routes: [{ respond: { status: 200, body: "ok" } }]
YAML
"$SLUICE" -c "$E2E_TMP/sluice.yaml" >"$E2E_TMP/sluice.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$port"

scan=$(timeout 60 sslscan --no-colour --sni-name=a.test "127.0.0.1:$port")
echo "$scan" >"$E2E_TMP/sslscan-a.txt"
old=$(grep -Ec "^(SSLv2|SSLv3|TLSv1\.0|TLSv1\.1) +enabled" <<<"$scan" || true)
check "no protocol older than TLS 1.2" "0" "$old"
check "TLS 1.2 and 1.3 enabled" "2" "$(grep -Ec "^TLSv1\.[23] +enabled" <<<"$scan" || true)"
weak=$(grep -E "^(Accepted|Preferred)" <<<"$scan" | grep -Ec "RC4|DES|NULL|EXP|MD5|-SHA |-SHA$|CBC" || true)
check "no weak or non-AEAD suite" "0" "$weak"
check "no renegotiation" "1" "$(grep -c "Session renegotiation not supported" <<<"$scan" || true)"
check "no compression" "0" "$(grep -Eic "^Compression enabled" <<<"$scan" || true)"
check "SNI a.test: the RSA certificate" "1" "$(grep -Ec "^Subject: +a\.test" <<<"$scan" || true)"
scan_c=$(timeout 60 sslscan --no-colour --no-ciphersuites --no-groups --sni-name=c.test "127.0.0.1:$port")
check "SNI c.test: the ECDSA certificate" "1" "$(grep -Ec "^Subject: +c\.test" <<<"$scan_c" || true)"
finish
