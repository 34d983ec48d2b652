#!/usr/bin/env bash
# Builds the Vault server the integration tests use into .cache/bin/vault, once.
# Vault is not in Debian and `go install` cannot build it (its go.mod has replace
# directives), so deploy/vault-dev is a wrapper module pinned to v1.21.0 (later
# 1.21.x patch releases do not compile against published sdk tags). Cold: ~11 min
# on an idle 2-core machine, over 30 min when the machine is busy.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.cache/bin/vault"
if [ -x "$out" ] && "$out" version >/dev/null 2>&1; then
	exit 0
fi
mkdir -p "$root/.cache/bin"
cd "$root/deploy/vault-dev"
echo "building the Vault server into $out (once; about 11 minutes cold)" >&2
# go.mod and go.sum are committed (tidied once): the build resolves exactly
# those versions and verifies every module against its recorded checksum.
GOFLAGS=-mod=readonly CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags='-s -w' -o "$out.tmp" .
mv "$out.tmp" "$out"
"$out" version
