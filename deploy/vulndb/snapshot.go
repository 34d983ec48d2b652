package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// osvDir is where golang/vulndb keeps its OSV entries, one GO-YYYY-NNNN.json each.
const osvDir = "data/osv"

// The module paths govulncheck uses for Go itself.
const (
	stdlibModule    = "stdlib"
	toolchainModule = "toolchain"
)

// Entry is an OSV entry reduced to the facts govulncheck matches on, in the
// field names of the OSV schema and of golang.org/x/vuln's internal/osv. Fields
// not declared here (summary, details, references, credits, related, the review
// status, custom ranges) are dropped when an entry is read.
type Entry struct {
	SchemaVersion string     `json:"schema_version,omitempty"`
	ID            string     `json:"id"`
	Modified      time.Time  `json:"modified"`
	Published     time.Time  `json:"published"`
	Withdrawn     *time.Time `json:"withdrawn,omitempty"`
	Aliases       []string   `json:"aliases,omitempty"`
	Affected      []Affected `json:"affected"`
	// Always present: govulncheck's text output reads its URL without a nil check.
	DatabaseSpecific DatabaseSpecific `json:"database_specific"`
}

// Affected is one affected module: its version ranges and, where known, the
// vulnerable packages and symbols.
type Affected struct {
	Package           Package            `json:"package"`
	Ranges            []Range            `json:"ranges,omitempty"`
	EcosystemSpecific *EcosystemSpecific `json:"ecosystem_specific,omitempty"`
}

// Package names the module ("stdlib" and "toolchain" for Go itself).
type Package struct {
	Name      string `json:"name"`
	Ecosystem string `json:"ecosystem"`
}

// Range is a SEMVER range: versions from each introduced up to the next fixed.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event opens or closes a range.
type Event struct {
	Introduced string `json:"introduced,omitempty"`
	Fixed      string `json:"fixed,omitempty"`
}

// EcosystemSpecific holds the vulnerable packages.
type EcosystemSpecific struct {
	Imports []Import `json:"imports,omitempty"`
}

// Import is a vulnerable package, its symbols and the platforms it is limited to.
type Import struct {
	Path    string   `json:"path,omitempty"`
	GOOS    []string `json:"goos,omitempty"`
	GOARCH  []string `json:"goarch,omitempty"`
	Symbols []string `json:"symbols,omitempty"`
}

// DatabaseSpecific keeps the advisory's address (https://pkg.go.dev/vuln/ID).
type DatabaseSpecific struct {
	URL string `json:"url,omitempty"`
}

// Source is data/osv of golang/vulndb at one commit, every entry stripped.
type Source struct {
	Commit  string
	Date    time.Time // the commit's committer time, UTC
	Entries []*Entry  // sorted by ID
}

// Snapshot is the part of a Source that a snapshot archive carries.
type Snapshot struct {
	Commit  string
	Date    time.Time
	Modules []string // the module paths entries were chosen for, sorted
	Entries []*Entry // sorted by ID
}

// ReadRepo reads data/osv at rev from the golang/vulndb git repository in dir
// (a clone or a bare git directory) with the git command, and dates every entry
// from the history as vuln.go.dev's deployment does (x/vulndb's
// database.FromRepo): modified is the committer time of the latest commit that
// touched the file, and a zero published becomes that of the first.
func ReadRepo(dir, rev string) (*Source, error) {
	out, err := git(dir, nil, "rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return nil, err
	}
	commit := strings.TrimSpace(string(out))
	if out, err = git(dir, nil, "show", "-s", "--format=%ct", commit); err != nil {
		return nil, err
	}
	date, err := unixTime(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("commit time of %s: %w", commit, err)
	}
	files, err := readOSVFiles(dir, commit)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s has no %s/*.json at %s: not a golang/vulndb repository?", dir, osvDir, commit)
	}
	dates, err := commitDates(dir, commit)
	if err != nil {
		return nil, err
	}
	src := &Source{Commit: commit, Date: date}
	for name, data := range files {
		e, err := ParseEntry(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if path.Base(name) != e.ID+".json" {
			return nil, fmt.Errorf("%s holds entry %q", name, e.ID)
		}
		d, ok := dates[name]
		if !ok {
			return nil, fmt.Errorf("%s: no commit in the history of %s touches it (a shallow clone?)", name, commit)
		}
		e.Modified = d.newest
		if e.Published.IsZero() {
			e.Published = d.oldest
		}
		src.Entries = append(src.Entries, e)
	}
	slices.SortFunc(src.Entries, func(a, b *Entry) int { return strings.Compare(a.ID, b.ID) })
	return src, nil
}

// ParseEntry reads one OSV entry and keeps only its facts.
func ParseEntry(data []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if e.ID == "" {
		return nil, fmt.Errorf("entry has no id")
	}
	if len(e.Affected) == 0 {
		return nil, fmt.Errorf("%s: no affected modules", e.ID)
	}
	for i := range e.Affected {
		a := &e.Affected[i]
		if a.Package.Name == "" {
			return nil, fmt.Errorf("%s: an affected module has no name", e.ID)
		}
		for _, r := range a.Ranges {
			if r.Type != "SEMVER" {
				return nil, fmt.Errorf("%s: %s: range type %q, want SEMVER", e.ID, a.Package.Name, r.Type)
			}
		}
		// custom_ranges alone (unreviewed entries) leave nothing to keep.
		if a.EcosystemSpecific != nil && len(a.EcosystemSpecific.Imports) == 0 {
			a.EcosystemSpecific = nil
		}
	}
	e.Modified = e.Modified.UTC()
	e.Published = e.Published.UTC()
	if e.Withdrawn != nil {
		w := e.Withdrawn.UTC()
		e.Withdrawn = &w
	}
	return &e, nil
}

// Select keeps the entries that affect Go itself or one of the modules.
func (s *Source) Select(modules []string) *Snapshot {
	keep := map[string]bool{stdlibModule: true, toolchainModule: true}
	for _, m := range modules {
		keep[m] = true
	}
	snap := &Snapshot{Commit: s.Commit, Date: s.Date}
	for m := range keep {
		snap.Modules = append(snap.Modules, m)
	}
	slices.Sort(snap.Modules)
	for _, e := range s.Entries {
		if slices.ContainsFunc(e.Affected, func(a Affected) bool { return keep[a.Package.Name] }) {
			snap.Entries = append(snap.Entries, e)
		}
	}
	return snap
}

// Index holds the three index endpoints of the v1 database layout.
type Index struct {
	DB      DBMeta
	Modules []ModuleMeta // sorted by path, each one's vulns by ID
	Vulns   []VulnMeta   // sorted by ID
}

// DBMeta is index/db.json.
type DBMeta struct {
	Modified time.Time `json:"modified"`
}

// ModuleMeta is one element of index/modules.json.
type ModuleMeta struct {
	Path  string       `json:"path"`
	Vulns []ModuleVuln `json:"vulns"`
}

// ModuleVuln lists one entry under a module, with the version from which the
// module is no longer affected (empty when there is none).
type ModuleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

// VulnMeta is one element of index/vulns.json.
type VulnMeta struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

// BuildIndex computes the index endpoints from the entries as x/vulndb's
// database package does.
func BuildIndex(entries []*Entry) Index {
	var idx Index
	modules := map[string]*ModuleMeta{}
	for _, e := range entries {
		if e.Modified.After(idx.DB.Modified) {
			idx.DB.Modified = e.Modified
		}
		idx.Vulns = append(idx.Vulns, VulnMeta{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &ModuleMeta{Path: a.Package.Name, Vulns: []ModuleVuln{}}
				modules[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, ModuleVuln{ID: e.ID, Modified: e.Modified, Fixed: LatestFixed(a.Ranges)})
		}
	}
	for _, m := range modules {
		slices.SortStableFunc(m.Vulns, func(a, b ModuleVuln) int { return strings.Compare(a.ID, b.ID) })
		idx.Modules = append(idx.Modules, *m)
	}
	slices.SortFunc(idx.Modules, func(a, b ModuleMeta) int { return strings.Compare(a.Path, b.Path) })
	slices.SortStableFunc(idx.Vulns, func(a, b VulnMeta) int { return strings.Compare(a.ID, b.ID) })
	return idx
}

// LatestFixed is the version from which no range is affected any more: the
// highest fixed version, or "" when a range is re-introduced after it
// (x/vulndb's osvutils.LatestFixed, x/vuln's semver.NonSupersededFix).
func LatestFixed(ranges []Range) string {
	var latest string
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed != "" && versionLess(latest, ev.Fixed) {
				latest = ev.Fixed
			}
		}
		for _, ev := range r.Events {
			if ev.Introduced != "" && ev.Introduced != "0" && versionLess(latest, ev.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

// versionLess compares OSV versions (no "v"); "" is less than any version.
func versionLess(a, b string) bool {
	return semver.Compare("v"+a, "v"+b) < 0
}

// File names inside a snapshot archive.
const (
	infoFile    = "SNAPSHOT"
	modulesFile = "modules.txt"
	dbFile      = "index/db.json"
	modulesJSON = "index/modules.json"
	vulnsJSON   = "index/vulns.json"
	idDir       = "ID"
)

// Info is the SNAPSHOT file: one "key value" a line, for shell scripts.
func (s *Snapshot) Info() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "source https://github.com/golang/vulndb (data/osv, CC-BY-4.0)\n")
	fmt.Fprintf(&b, "commit %s\n", s.Commit)
	fmt.Fprintf(&b, "date %s\n", s.Date.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "entries %d\n", len(s.Entries))
	return b.Bytes()
}

// Files returns the snapshot's files by name, ready for govulncheck -db file://.
func (s *Snapshot) Files() (map[string][]byte, error) {
	idx := BuildIndex(s.Entries)
	files := map[string][]byte{
		infoFile:    s.Info(),
		modulesFile: []byte(strings.Join(s.Modules, "\n") + "\n"),
	}
	for name, v := range map[string]any{dbFile: idx.DB, modulesJSON: idx.Modules, vulnsJSON: idx.Vulns} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	for _, e := range s.Entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		files[idDir+"/"+e.ID+".json"] = b
	}
	return files, nil
}

// Archive returns the snapshot as a gzipped tar. The same snapshot always gives
// the same bytes: files in name order, the commit's time on every file, no
// owner, and no name or time in the gzip header.
func (s *Snapshot) Archive() ([]byte, error) {
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, name := range names {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     0o644,
			Size:     int64(len(files[name])),
			ModTime:  s.Date.UTC(),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadArchive returns the files of a snapshot archive by name.
func ReadArchive(r io.Reader) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[hdr.Name] = b
	}
}

// readOSVFiles returns the contents of data/osv/*.json at commit by path.
func readOSVFiles(dir, commit string) (map[string][]byte, error) {
	out, err := git(dir, nil, "ls-tree", "-z", commit, osvDir+"/")
	if err != nil {
		return nil, err
	}
	var names, hashes []string
	for _, rec := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[1] != "blob" || path.Ext(name) != ".json" {
			continue
		}
		names = append(names, name)
		hashes = append(hashes, f[2])
	}
	if len(names) == 0 {
		return nil, nil
	}
	out, err = git(dir, strings.NewReader(strings.Join(hashes, "\n")+"\n"), "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(names))
	br := bufio.NewReader(bytes.NewReader(out))
	for i, name := range names {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file: %s: %w", name, err)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != hashes[i] {
			return nil, fmt.Errorf("git cat-file: %s: unexpected %q", name, strings.TrimSpace(line))
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file: %s: %w", name, err)
		}
		data := make([]byte, size+1) // and the newline after the contents
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, fmt.Errorf("git cat-file: %s: %w", name, err)
		}
		files[name] = data[:size]
	}
	return files, nil
}

type dates struct{ oldest, newest time.Time }

// commitDates returns, for every file under data/osv that a commit in the
// history of commit touched, the committer times of the first and the latest
// such commit.
func commitDates(dir, commit string) (map[string]dates, error) {
	out, err := git(dir, nil, "log", "--no-renames", "--format=@%ct", "--name-only", commit, "--", osvDir+"/")
	if err != nil {
		return nil, err
	}
	res := map[string]dates{}
	var when time.Time
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "@"):
			if when, err = unixTime(line[1:]); err != nil {
				return nil, fmt.Errorf("git log: %q: %w", line, err)
			}
		default:
			d, ok := res[line]
			if !ok || when.Before(d.oldest) {
				d.oldest = when
			}
			if !ok || when.After(d.newest) {
				d.newest = when
			}
			res[line] = d
		}
	}
	return res, nil
}

func unixTime(s string) (time.Time, error) {
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}

// git runs git in dir and returns its standard output.
func git(dir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
