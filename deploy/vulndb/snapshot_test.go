package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// full is an OSV entry as golang/vulndb writes it, with every field.
const full = `{
  "schema_version": "1.3.1",
  "id": "GO-2099-0001",
  "modified": "0001-01-01T00:00:00Z",
  "published": "0001-01-01T00:00:00Z",
  "aliases": ["CVE-2099-1", "GHSA-xxxx-yyyy-zzzz"],
  "summary": "Something in example.com/a",
  "details": "A long description.",
  "affected": [
    {
      "package": {"name": "example.com/a", "ecosystem": "Go"},
      "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}, {"introduced": "1.3.0"}, {"fixed": "1.3.1"}]}],
      "ecosystem_specific": {"imports": [{"path": "example.com/a/b", "goos": ["windows"], "goarch": ["amd64"], "symbols": ["F", "T.M"]}]}
    },
    {
      "package": {"name": "example.com/c", "ecosystem": "Go"},
      "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
      "ecosystem_specific": {"custom_ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}
    }
  ],
  "references": [{"type": "FIX", "url": "https://example.com/fix"}],
  "credits": [{"name": "Someone"}],
  "related": ["CVE-2099-2"],
  "database_specific": {"url": "https://pkg.go.dev/vuln/GO-2099-0001", "review_status": "REVIEWED"}
}`

func TestParseEntryKeepsOnlyFacts(t *testing.T) {
	e, err := ParseEntry([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema_version":"1.3.1","id":"GO-2099-0001","modified":"0001-01-01T00:00:00Z","published":"0001-01-01T00:00:00Z",` +
		`"aliases":["CVE-2099-1","GHSA-xxxx-yyyy-zzzz"],"affected":[` +
		`{"package":{"name":"example.com/a","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"},{"introduced":"1.3.0"},{"fixed":"1.3.1"}]}],` +
		`"ecosystem_specific":{"imports":[{"path":"example.com/a/b","goos":["windows"],"goarch":["amd64"],"symbols":["F","T.M"]}]}},` +
		`{"package":{"name":"example.com/c","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}],` +
		`"database_specific":{"url":"https://pkg.go.dev/vuln/GO-2099-0001"}}`
	if string(got) != want {
		t.Errorf("stripped entry:\n got %s\nwant %s", got, want)
	}
}

func TestParseEntryRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no id":       `{"affected": [{"package": {"name": "m"}}]}`,
		"no affected": `{"id": "GO-2099-0001"}`,
		"no module":   `{"id": "GO-2099-0001", "affected": [{"package": {}}]}`,
		"not semver":  `{"id": "GO-2099-0001", "affected": [{"package": {"name": "m"}, "ranges": [{"type": "GIT", "events": []}]}]}`,
		"not json":    `{`,
	} {
		if _, err := ParseEntry([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLatestFixed(t *testing.T) {
	r := func(events ...Event) []Range { return []Range{{Type: "SEMVER", Events: events}} }
	for _, c := range []struct {
		ranges []Range
		want   string
	}{
		{r(Event{Introduced: "0"}), ""},
		{r(Event{Introduced: "0"}, Event{Fixed: "1.2.3"}), "1.2.3"},
		{r(Event{Introduced: "0"}, Event{Fixed: "1.2.3"}, Event{Introduced: "1.3.0"}, Event{Fixed: "1.3.1"}), "1.3.1"},
		// Re-introduced after the last fix: no version is safe from then on.
		{r(Event{Introduced: "0"}, Event{Fixed: "1.2.3"}, Event{Introduced: "1.4.0"}), ""},
		// Numeric, not lexical, order; pre-releases before releases.
		{r(Event{Introduced: "0"}, Event{Fixed: "1.9.0"}, Event{Introduced: "1.10.0-0"}, Event{Fixed: "1.10.2"}), "1.10.2"},
		{r(Event{Introduced: "0"}, Event{Fixed: "0.0.0-20220906165146-f3363e06e74c"}), "0.0.0-20220906165146-f3363e06e74c"},
	} {
		if got := LatestFixed(c.ranges); got != c.want {
			t.Errorf("LatestFixed(%v) = %q, want %q", c.ranges, got, c.want)
		}
	}
}

// commit commits files (name to contents; "" removes) into the git repository
// in dir with the given committer time.
func commit(t *testing.T, dir string, when time.Time, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if data == "" {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	date := when.Format(time.RFC3339)
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "change"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

func entryJSON(id, module, fixed, published string) string {
	return `{"id": "` + id + `", "published": "` + published + `", "summary": "s", "details": "d",
  "affected": [{"package": {"name": "` + module + `", "ecosystem": "Go"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "` + fixed + `"}]}]}],
  "database_specific": {"url": "https://pkg.go.dev/vuln/` + id + `"}}`
}

func TestFromRepo(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	t1 := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	t2 := t1.Add(48 * time.Hour)
	t3 := t2.Add(48 * time.Hour)
	const zero = "0001-01-01T00:00:00Z"
	commit(t, dir, t1, map[string]string{
		"data/osv/GO-2023-0001.json":     entryJSON("GO-2023-0001", "stdlib", "1.20.1", zero),
		"data/osv/GO-2023-0002.json":     entryJSON("GO-2023-0002", "example.com/used", "1.0.0", "2022-12-01T00:00:00Z"),
		"data/osv/GO-2023-0003.json":     entryJSON("GO-2023-0003", "example.com/other", "2.0.0", zero),
		"data/reports/GO-2023-0001.yaml": "id: GO-2023-0001\n",
	})
	commit(t, dir, t2, map[string]string{
		"data/osv/GO-2023-0001.json": entryJSON("GO-2023-0001", "stdlib", "1.20.2", zero),
		"data/osv/GO-2023-0004.json": entryJSON("GO-2023-0004", "toolchain", "1.20.3", zero),
	})
	// A later commit that touches no entry does not date any.
	commit(t, dir, t3, map[string]string{"README.md": "vulndb\n"})

	src, err := ReadRepo(dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if !src.Date.Equal(t3) || len(src.Commit) != 40 {
		t.Errorf("commit %q at %v, want a hash at %v", src.Commit, src.Date, t3)
	}
	snap := src.Select([]string{"example.com/used", "example.com/absent"})
	var ids []string
	for _, e := range snap.Entries {
		ids = append(ids, e.ID)
	}
	if want := []string{"GO-2023-0001", "GO-2023-0002", "GO-2023-0004"}; !slices.Equal(ids, want) {
		t.Fatalf("selected %v, want %v", ids, want)
	}
	if want := []string{"example.com/absent", "example.com/used", "stdlib", "toolchain"}; !slices.Equal(snap.Modules, want) {
		t.Errorf("modules %v, want %v", snap.Modules, want)
	}
	byID := map[string]*Entry{}
	for _, e := range snap.Entries {
		byID[e.ID] = e
	}
	for _, c := range []struct {
		id                  string
		modified, published time.Time
	}{
		{"GO-2023-0001", t2, t1}, // changed in the second commit, published by the first
		{"GO-2023-0002", t1, time.Date(2022, 12, 1, 0, 0, 0, 0, time.UTC)}, // the file's own published wins
		{"GO-2023-0004", t2, t2},
	} {
		e := byID[c.id]
		if !e.Modified.Equal(c.modified) || !e.Published.Equal(c.published) {
			t.Errorf("%s: modified %v published %v, want %v and %v", c.id, e.Modified, e.Published, c.modified, c.published)
		}
	}

	files, err := snap.Files()
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string]string{
		"index/db.json": `{"modified":"2023-01-04T03:04:05Z"}`,
		"index/modules.json": `[{"path":"example.com/used","vulns":[{"id":"GO-2023-0002","modified":"2023-01-02T03:04:05Z","fixed":"1.0.0"}]},` +
			`{"path":"stdlib","vulns":[{"id":"GO-2023-0001","modified":"2023-01-04T03:04:05Z","fixed":"1.20.2"}]},` +
			`{"path":"toolchain","vulns":[{"id":"GO-2023-0004","modified":"2023-01-04T03:04:05Z","fixed":"1.20.3"}]}]`,
		"index/vulns.json": `[{"id":"GO-2023-0001","modified":"2023-01-04T03:04:05Z"},{"id":"GO-2023-0002","modified":"2023-01-02T03:04:05Z"},` +
			`{"id":"GO-2023-0004","modified":"2023-01-04T03:04:05Z"}]`,
		"modules.txt": "example.com/absent\nexample.com/used\nstdlib\ntoolchain\n",
		"SNAPSHOT":    "date 2023-01-06T03:04:05Z\nentries 3\n",
	}
	for name, want := range wantFiles {
		got := string(files[name])
		if name == "SNAPSHOT" {
			if !strings.Contains(got, "commit "+src.Commit+"\n") || !strings.HasSuffix(got, want) {
				t.Errorf("SNAPSHOT:\n%s", got)
			}
			continue
		}
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	if strings.Contains(string(files["ID/GO-2023-0001.json"]), "details") {
		t.Errorf("ID/GO-2023-0001.json keeps prose: %s", files["ID/GO-2023-0001.json"])
	}

	// The same commit gives the same archive, and it reads back as written.
	a1, err := snap.Archive()
	if err != nil {
		t.Fatal(err)
	}
	src2, err := ReadRepo(dir, src.Commit)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := src2.Select([]string{"example.com/absent", "example.com/used"}).Archive()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1, a2) {
		t.Error("two archives of the same commit and modules differ")
	}
	back, err := ReadArchive(bytes.NewReader(a1))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, files) {
		t.Error("the archive does not read back as the files written")
	}

	// An older commit is a different snapshot.
	old, err := ReadRepo(dir, "HEAD~2")
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Entries) != 3 || old.Entries[0].Affected[0].Ranges[0].Events[1].Fixed != "1.20.1" {
		t.Errorf("HEAD~2: %d entries, first %+v", len(old.Entries), old.Entries[0])
	}
}

func TestReadRepoRejectsOtherRepositories(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	commit(t, dir, time.Now(), map[string]string{"README.md": "x\n"})
	if _, err := ReadRepo(dir, "HEAD"); err == nil || !strings.Contains(err.Error(), "not a golang/vulndb repository") {
		t.Errorf("ReadRepo of a repository without data/osv: %v", err)
	}
	if _, err := ReadRepo(dir, "no-such-rev"); err == nil {
		t.Error("ReadRepo of a missing revision succeeded")
	}
}

// TestCommittedSnapshot checks snapshot.tar.gz as committed: the layout
// govulncheck reads, indexes that match the entries, only facts in the
// entries, and the attribution in README.md naming the same commit.
func TestCommittedSnapshot(t *testing.T) {
	data, err := os.ReadFile("snapshot.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 500<<10 {
		t.Errorf("snapshot.tar.gz is %d bytes; keep it under 500 KiB", len(data))
	}
	files, err := ReadArchive(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(files[infoFile])), "\n") {
		k, v, _ := strings.Cut(line, " ")
		info[k] = v
	}
	date, err := time.Parse(time.RFC3339, info["date"])
	if err != nil || len(info["commit"]) != 40 {
		t.Fatalf("SNAPSHOT: %q", files[infoFile])
	}

	var entries []*Entry
	for name, b := range files {
		if !strings.HasPrefix(name, idDir+"/") {
			continue
		}
		// Only the fields of Entry, nothing else: the prose stays out.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k := range raw {
			if !slices.Contains([]string{"schema_version", "id", "modified", "published", "withdrawn", "aliases", "affected", "database_specific"}, k) {
				t.Errorf("%s: field %q", name, k)
			}
		}
		for _, word := range []string{`"summary"`, `"details"`, `"references"`, `"credits"`, `"custom_ranges"`, `"review_status"`} {
			if bytes.Contains(b, []byte(word)) {
				t.Errorf("%s contains %s", name, word)
			}
		}
		e, err := ParseEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != idDir+"/"+e.ID+".json" {
			t.Errorf("%s holds %s", name, e.ID)
		}
		if e.Modified.IsZero() || e.Modified.After(date) || e.DatabaseSpecific.URL == "" {
			t.Errorf("%s: modified %v (snapshot %v), url %q", name, e.Modified, date, e.DatabaseSpecific.URL)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *Entry) int { return strings.Compare(a.ID, b.ID) })
	if n := len(entries); n < 100 || info["entries"] != strconv.Itoa(n) {
		t.Errorf("%d entries, SNAPSHOT says %s", n, info["entries"])
	}
	modules := strings.Fields(string(files[modulesFile]))
	for _, m := range []string{stdlibModule, toolchainModule, "golang.org/x/text", "golang.org/x/net"} {
		if !slices.Contains(modules, m) {
			t.Errorf("modules.txt lacks %s", m)
		}
	}
	for _, e := range entries {
		if !slices.ContainsFunc(e.Affected, func(a Affected) bool { return slices.Contains(modules, a.Package.Name) }) {
			t.Errorf("%s affects no module of modules.txt", e.ID)
		}
	}
	// The indexes are exactly what the entries give.
	snap := &Snapshot{Commit: info["commit"], Date: date, Modules: modules, Entries: entries}
	want, err := snap.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(files) {
		t.Errorf("archive has %d files, its entries make %d", len(files), len(want))
	}
	for name, b := range want {
		if !bytes.Equal(files[name], b) {
			t.Errorf("%s differs from what the entries give", name)
		}
	}
	// Entries the proof in deploy/scripts/vulncheck.sh and the product rely on.
	for _, id := range []string{"GO-2022-1059", "GO-2026-5052"} {
		if files[idDir+"/"+id+".json"] == nil {
			t.Errorf("%s is missing", id)
		}
	}

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{info["commit"], date.Format("2006-01-02"), "CC-BY-4.0", "https://github.com/golang/vulndb"} {
		if !bytes.Contains(readme, []byte(s)) {
			t.Errorf("README.md does not mention %s", s)
		}
	}
}

func TestReadModules(t *testing.T) {
	got, err := readModules(strings.NewReader("example.com/a v1.0.0\n\n# a comment\nexample.com/b # why\n"))
	if err != nil || !slices.Equal(got, []string{"example.com/a", "example.com/b"}) {
		t.Errorf("readModules = %v, %v", got, err)
	}
	if _, err := readModules(strings.NewReader("\n")); err == nil {
		t.Error("an empty module list was accepted")
	}
}
