#!/usr/bin/env bash
# Builds the Vault server the integration tests use into .cache/bin/vault, once.
# Vault is not in Debian and `go install` cannot build it (its go.mod has replace
# directives), so deploy/vault-dev is a wrapper module pinned to v1.21.0 (later
# 1.21.x patch releases do not compile against published sdk tags). Cold: ~11 min.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.cache/bin/vault"
if [ -x "$out" ] && "$out" version >/dev/null 2>&1; then
	exit 0
fi
mkdir -p "$root/.cache/bin"
cd "$root/deploy/vault-dev"
echo "building the Vault server into $out (once; about 11 minutes cold)" >&2
# go.sum is not committed: it is ~2,500 lines, regenerated here from the pinned go.mod.
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out.tmp" .
mv "$out.tmp" "$out"
"$out" version
