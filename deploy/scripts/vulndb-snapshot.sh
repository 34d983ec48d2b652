#!/usr/bin/env bash
# Regenerates deploy/vulndb/snapshot.tar.gz, the vulnerability database `make
# vulncheck` falls back to when vuln.go.dev cannot be reached (CI reaches only the
# Go module proxy, and the proxy refuses golang.org/x/vulndb). Run it when the
# snapshot is old, or when vulncheck says a module of the build list is not
# covered by it:
#
#   git clone https://github.com/golang/vulndb ~/src/vulndb   # or git -C ~/src/vulndb pull
#   deploy/scripts/vulndb-snapshot.sh ~/src/vulndb [REV]
#
# The argument is a golang/vulndb git repository, a clone or a bare git
# directory, with its full history (entries are dated from it). The snapshot
# keeps the entries for the standard library, the toolchain and every module in
# the build lists of the product, deploy/k8s-schemas and the vulncheck proof
# module (deploy/vulndb/testdata/vulnerable), stripped to facts; see
# deploy/vulndb/README.md. Then update the commit and date in that README (the
# deploy/vulndb tests insist) and commit both.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
repo="${1:?usage: vulndb-snapshot.sh VULNDB_GIT_REPO [REV]}"
rev="${2:-HEAD}"
repo="$(cd "$repo" && pwd)"
go="${GO:-go}"

modules="$(mktemp)"
trap 'rm -f "$modules"' EXIT
for dir in . deploy/k8s-schemas deploy/vulndb/testdata/vulnerable; do
	(cd "$root/$dir" && "$go" list -m -f '{{.Path}}' all) >>"$modules"
done
sort -u -o "$modules" "$modules"

cd "$root/deploy/vulndb"
"$go" run . -repo "$repo" -rev "$rev" -modules "$modules" -out snapshot.tar.gz
tar -xOzf snapshot.tar.gz SNAPSHOT
echo "now put the commit and date above into deploy/vulndb/README.md" >&2
