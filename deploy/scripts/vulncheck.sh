#!/usr/bin/env bash
# Runs govulncheck on the product (./...) and fails when our code reaches a
# known vulnerability. The database is https://vuln.go.dev when a quick probe
# reaches it; otherwise (CI reaches only the Go module proxy, and the proxy
# refuses golang.org/x/vulndb) the committed snapshot deploy/vulndb/snapshot.tar.gz,
# unpacked once into .cache/vulndb-<date>. The output says which was used and,
# for the snapshot, its date: it does not know what was published after that
# (regenerate it with deploy/scripts/vulndb-snapshot.sh).
#
# Before the real scan, the same database must find GO-2022-1059 called in
# deploy/vulndb/testdata/vulnerable: proof that the check can fail at all.
#
# `make vulncheck` installs govulncheck and passes it in: GOVULNCHECK (the
# binary). VULNCHECK_DB=snapshot skips the probe; =online fails without it.
# VULNCHECK_ONLINE_DB replaces https://vuln.go.dev (a mirror in the same layout).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${GOVULNCHECK:?}"
go="${GO:-go}"
mode="${VULNCHECK_DB:-auto}"
online_db="${VULNCHECK_ONLINE_DB:-https://vuln.go.dev}"
snapshot="$root/deploy/vulndb/snapshot.tar.gz"
proof="$root/deploy/vulndb/testdata/vulnerable"
proof_id=GO-2022-1059

fail() {
	echo "vulncheck: $*" >&2
	exit 1
}
case "$mode" in auto | online | snapshot) ;; *) fail "VULNCHECK_DB=$mode: want auto, online or snapshot" ;; esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The probe fetches the index govulncheck would read first; DNS failure is immediate.
online=""
if [ "$mode" != snapshot ]; then
	if curl -fsS --connect-timeout 3 --max-time 5 -o "$tmp/db.json.gz" "$online_db/index/db.json.gz" 2>"$tmp/probe.txt"; then
		online=1
	elif [ "$mode" = online ]; then
		fail "VULNCHECK_DB=online, but $online_db cannot be reached: $(head -c 200 "$tmp/probe.txt")"
	fi
fi

if [ -n "$online" ]; then
	db="$online_db"
	modified="$(gzip -dc "$tmp/db.json.gz" | sed -n 's/.*"modified" *: *"\([^"]*\)".*/\1/p')"
	echo "vulncheck: database $db (online, modified $modified)"
else
	tar -xOzf "$snapshot" SNAPSHOT >"$tmp/SNAPSHOT" || fail "cannot read $snapshot"
	date="$(sed -n 's/^date //p' "$tmp/SNAPSHOT")"
	commit="$(sed -n 's/^commit //p' "$tmp/SNAPSHOT")"
	[ -n "$date" ] && [ -n "$commit" ] || fail "$snapshot: SNAPSHOT has no date or commit"
	dir="$root/.cache/vulndb-${date%%T*}"
	sum="$(sha256sum "$snapshot" | cut -d' ' -f1)"
	if [ "$(cat "$dir/.sha256" 2>/dev/null)" != "$sum" ]; then
		rm -rf "$dir.tmp"
		mkdir -p "$dir.tmp"
		tar -xzf "$snapshot" -C "$dir.tmp"
		echo "$sum" >"$dir.tmp/.sha256"
		rm -rf "$dir"
		mv "$dir.tmp" "$dir"
	fi
	db="file://$dir"
	why="${online_db#https://} not reachable"
	[ "$mode" = snapshot ] && why="VULNCHECK_DB=snapshot"
	age=$((($(date +%s) - $(date -d "$date" +%s)) / 86400))
	echo "vulncheck: $why; database: snapshot of golang/vulndb ${commit:0:12} dated ${date%%T*} ($age days old), in ${dir#"$root"/}"

	# The snapshot keeps entries only for the modules it was made for: a module
	# added to the build list since then would be checked against nothing.
	(cd "$root" && "$go" list -m -f '{{.Path}}' all) | sort -u >"$tmp/build.txt"
	sort -u "$dir/modules.txt" >"$tmp/covered.txt"
	missing="$(comm -23 "$tmp/build.txt" "$tmp/covered.txt")"
	[ -z "$missing" ] || fail "the snapshot was not made for these modules of the build list; regenerate it (deploy/scripts/vulndb-snapshot.sh, see deploy/vulndb/README.md):
$missing"
fi

# The proof: a call to a vulnerable symbol must be reported, and fail the scan.
start=$SECONDS
rc=0
"$GOVULNCHECK" -C "$proof" -db "$db" ./... >"$tmp/proof.txt" 2>&1 || rc=$?
if [ "$rc" -ne 3 ] || ! awk -v id="$proof_id" '/^=== /{sym = ($0 == "=== Symbol Results ===")}
	sym && $0 ~ "^Vulnerability #[0-9]+: " id "$" {found = 1} END {exit !found}' "$tmp/proof.txt"; then
	cat "$tmp/proof.txt" >&2
	fail "govulncheck did not report $proof_id as called in ${proof#"$root"/} (exit $rc, want 3): the check could not fail"
fi
echo "vulncheck: proof: $proof_id reported as called in ${proof#"$root"/} ($((SECONDS - start)) s)"

start=$SECONDS
rc=0
"$GOVULNCHECK" -C "$root" -db "$db" ./... || rc=$?
case "$rc" in
0) echo "vulncheck: ok, no known vulnerability reachable from our code ($((SECONDS - start)) s)" ;;
3) fail "our code reaches the vulnerabilities above: bump each module to its 'Fixed in' version (a standard library one needs a newer Go); there are no exceptions" ;;
*) fail "govulncheck failed (exit $rc)" ;;
esac
