// Command vulndb makes the offline vulnerability database that `make vulncheck`
// gives govulncheck when vuln.go.dev cannot be reached (as on CI, where only the
// Go module proxy is reachable and the proxy refuses golang.org/x/vulndb).
//
// It reads data/osv/ of a golang/vulndb git repository (a clone or a bare git
// directory) at one commit and writes snapshot.tar.gz: the entries that affect
// the standard library, the toolchain or a module in the given list, reduced to
// facts (ids, aliases, dates, affected modules, version ranges, packages and
// symbols, the advisory URL; no summary, details, references or credits), in
// the v1 layout of https://go.dev/security/vuln/database#api that govulncheck's
// -db file:// client reads:
//
//	index/db.json       {"modified": latest entry modification}
//	index/modules.json  [{"path", "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/GO-YYYY-NNNN.json
//	SNAPSHOT            source, commit, date and entry count, one "key value" a line
//	modules.txt         the module paths the entries were chosen for
//
// Modified and published times are computed as vuln.go.dev's deployment does:
// modified is the committer time of the latest commit to touch the file,
// published the one in the file or else that of the first commit. The archive is
// deterministic: the same commit and module list give the same bytes.
//
// It lives in its own module, outside the product's go.mod;
// deploy/scripts/vulndb-snapshot.sh runs it with the build list of the product.
//
//	go run . -repo ~/src/vulndb -modules modules.txt -out snapshot.tar.gz
package main
