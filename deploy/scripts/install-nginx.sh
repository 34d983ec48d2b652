#!/usr/bin/env bash
# Installs Debian's nginx for `make bench` when `nginx` is missing: nginx-light
# where the release has it, else nginx. The benchmark runs nginx as its own child
# process with a generated configuration, so the package's system service must
# not start: a temporary policy-rc.d keeps it stopped during the install.
set -euo pipefail

command -v nginx >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/nginx ] && exit 0

missing=(nginx)
. "$(dirname "$0")/root.sh"

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# installed by consentgate install-nginx.sh for the duration of the install\nexit 101\n' |
		$sudo tee "$policy" >/dev/null
	$sudo chmod 0755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi

echo "installing nginx for the benchmark" >&2
$sudo apt-get update -qq
pkg=nginx-light
apt-cache show nginx-light >/dev/null 2>&1 || pkg=nginx
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg"
