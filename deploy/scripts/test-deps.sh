#!/usr/bin/env bash
# Installs what `make test` needs beyond Go, when it is missing: curl (the tests run
# the curl commands `consentgate dev` prints), busybox (the shell and tools of
# the hashicorp/vault image, in which deploy/compose/seed-vault.sh runs; the
# deploy tests run it the same way) and PostgreSQL (the shared consent backend's
# tests start a throwaway server: internal/pgdev), tinyproxy (a real HTTP
# CONNECT proxy for the egress tests: internal/tinyproxy), SoftHSM2 (a
# PKCS#11 token for the HSM tests: internal/softhsm), Prometheus (its
# promtool checks the shipped alert rules), rsyslog with its TLS driver (a
# syslog receiver for the audit stream tests: internal/rsyslogdev) and headless
# Chromium with NSS's tools (the web console's browser tests: internal/browser).
# Debian packages, through apt.
set -euo pipefail

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# rsyslog with its TLS driver: a real RFC 5425 receiver for the audit stream tests
# (internal/rsyslogdev).
command -v rsyslogd >/dev/null 2>&1 || missing+=(rsyslog)
compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null || missing+=(rsyslog-gnutls)
# Headless Chromium and NSS's certutil/pk12util: a real browser presenting a
# client certificate to the mTLS web console (internal/browser). No
# AutoSelectCertificateForUrls policy under /etc/chromium is written:
# internal/browser puts the same setting, for loopback origins only, into each
# browser's own throwaway profile, which Chromium honours, headless too.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
{ command -v certutil && command -v pk12util; } >/dev/null 2>&1 || missing+=(libnss3-tools)
# Debian keeps initdb off PATH, under /usr/lib/postgresql/<version>/bin.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

. "$(dirname "$0")/root.sh"
echo "installing ${missing[*]} for the tests" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates
