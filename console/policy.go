package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/policy"
)

// policyData is the policy page: the revision in service, the revisions
// served since start, and a dry run's result.
type policyData struct {
	Status     policy.Status
	History    []policy.Revision
	Diff       []fileDiff
	From, To   string
	DryRun     *dryRunResult
	FromBundle bool
	// Files are the revision's files relative to its source folder.
	Files  []string
	Bounds struct{ Default, Max int }
}

type dryRunResult struct {
	Candidate string // its revision id
	Error     string // why it does not load
	Asked     int    // decisions asked for
	// ErrorTitle says which failure Error is: the upload, the candidate not
	// loading, its process failing, or the time bound.
	ErrorTitle string
	policy.Replay
}

// fileDiff is one file's unified diff, line by line, for the page to colour.
type fileDiff struct {
	Name  string
	Lines []diffLine
}

type diffLine struct {
	Op   string // "add", "del", "hunk" or ""
	Text string
}

func (c *console) policyPage() policyData {
	h := c.o.Policy.History()
	slices.Reverse(h)
	d := policyData{Status: c.o.Policy.Status(), History: h, FromBundle: c.o.Policy.Source().Dir == ""}
	d.Bounds.Default, d.Bounds.Max = defaultReplay, maxReplay
	for _, f := range d.Status.Files {
		if rel, err := filepath.Rel(d.Status.Source, f); err == nil && !strings.HasPrefix(rel, "..") {
			f = rel
		}
		d.Files = append(d.Files, f)
	}
	return d
}

func (c *console) policy(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "policy.html", "Policy", c.policyPage())
}

// policyDiff serves GET /console/policy/diff?from=&to=: two revisions this
// gateway has served, file by file.
func (c *console) policyDiff(w http.ResponseWriter, r *http.Request) {
	d := c.policyPage()
	find := func(id string) *policy.Revision {
		for i := range d.History {
			if d.History[i].ID == id {
				return &d.History[i]
			}
		}
		return nil
	}
	from, to := find(r.URL.Query().Get("from")), find(r.URL.Query().Get("to"))
	if from == nil || to == nil {
		c.fail(w, r, http.StatusNotFound, "Choose two revisions this gateway has served since it started.")
		return
	}
	d.From, d.To, d.Diff = from.ID, to.ID, diffSources(from.Sources, to.Sources)
	c.render(w, r, "policy.html", "Policy", d)
}

// diffSources is the unified diff of every file that differs.
func diffSources(from, to map[string]string) []fileDiff {
	names := map[string]bool{}
	for n := range from {
		names[n] = true
	}
	for n := range to {
		names[n] = true
	}
	var out []fileDiff
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if from[n] == to[n] {
			continue
		}
		fd := fileDiff{Name: n}
		for _, l := range strings.Split(strings.TrimSuffix(udiff.Unified("a/"+n, "b/"+n, from[n], to[n]), "\n"), "\n") {
			op := ""
			switch {
			case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
				continue
			case strings.HasPrefix(l, "@@"):
				op = "hunk"
			case strings.HasPrefix(l, "+"):
				op = "add"
			case strings.HasPrefix(l, "-"):
				op = "del"
			}
			fd.Lines = append(fd.Lines, diffLine{Op: op, Text: l})
		}
		out = append(out, fd)
	}
	return out
}

// Dry-run bounds: the upload, the decisions replayed, the records read to
// find them, and the time one dry run may take.
const (
	maxUpload     = 4 << 20
	defaultReplay = 1000
	maxReplay     = 20000
	maxChanges    = 200
	maxReplayScan = 1_000_000
	dryRunTime    = 2 * time.Minute
)

// dryRun serves POST /console/policy/dry-run (admins): the uploaded files
// over the policy folder in service make a candidate, which is loaded as a
// reload would load it and asked the last N recorded questions; the page shows
// what would change and the diff. Nothing goes live. The dry run is recorded,
// with the files' hashes, before any of the uploaded code runs, and its result
// after.
func (c *console) dryRun(w http.ResponseWriter, r *http.Request) {
	// The token is inside the multipart body, which is read only after the
	// headers say the form comes from the console's own origin.
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "This form did not come from the console's own page.")
		return
	}
	release, ok := c.acquire(w, r, c.dryRunning, busyDryRun)
	if !ok {
		return
	}
	defer release()
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	if err := r.ParseMultipartForm(maxUpload); err != nil {
		c.fail(w, r, http.StatusBadRequest, "The upload is not a form of policy files of at most 4 MiB.")
		return
	}
	if !c.csrf.check(r) {
		c.fail(w, r, http.StatusForbidden, "This form did not come from the console's own page.")
		return
	}
	n := defaultReplay
	if s := r.PostFormValue("last"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxReplay {
			c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("last is a number of decisions from 1 to %d.", maxReplay))
			return
		}
		n = v
	}
	d := c.policyPage()
	res := &dryRunResult{Asked: n}
	d.DryRun = res
	files, err := readUploads(r.MultipartForm.File["files"])
	if err != nil {
		res.ErrorTitle, res.Error = "The upload is not a policy:", err.Error()
		c.renderStatus(w, r, http.StatusBadRequest, "policy.html", "Policy", d)
		return
	}
	if !c.record(w, r, "policy dry run", audit.Record{Detail: map[string]string{"files": describe(files), "last": strconv.Itoa(n)}}) {
		return
	}
	c.runDryRun(w, r, d, files)
}

// runDryRun loads the candidate and replays; both bounded by dryRunTime.
func (c *console) runDryRun(w http.ResponseWriter, r *http.Request, d policyData, files map[string][]byte) {
	res := d.DryRun
	ctx, cancel := context.WithTimeout(r.Context(), dryRunTime)
	defer cancel()
	dir, err := c.candidateDir(files)
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		c.o.Logger.Error("dry run candidate not written", "error", err.Error())
		c.fail(w, r, http.StatusInternalServerError, "The candidate could not be written to a temporary folder.")
		return
	}
	in := c.o.Policy.DryRunInput(dir)
	in.MaxChanges = maxChanges
	if in.Decisions, err = c.recordedDecisions(ctx, res.Asked); err != nil {
		c.o.Logger.Error("dry run decisions not read", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The recorded decisions could not be read.")
		return
	}
	in.Fields = c.fieldsOf(in.Decisions)
	out, err := c.o.DryRun(ctx, in)
	status := http.StatusOK
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return // the admin left; the record of the dry run says it began
	case ctx.Err() != nil:
		res.ErrorTitle, res.Error = "The dry run stopped at its time bound:", fmt.Sprintf("it took longer than %s; replay fewer decisions", dryRunTime)
		status = http.StatusServiceUnavailable
	case err != nil:
		res.ErrorTitle, res.Error = "The candidate could not be evaluated:", err.Error()
		status = http.StatusUnprocessableEntity
	case out.Error != "":
		res.ErrorTitle = "The candidate does not load, so it could not go live either:"
		res.Error = strings.NewReplacer(dir+string(filepath.Separator), "", dir, "(candidate)").Replace(out.Error)
		status = http.StatusUnprocessableEntity
	default:
		res.Candidate, res.Replay = out.Candidate.ID, out.Replay
		d.Diff = diffSources(c.o.Policy.Current().Sources, out.Candidate.Sources)
	}
	result := map[string]string{"replayed": strconv.Itoa(res.Replayed), "changed": strconv.Itoa(res.Changed)}
	if res.Error != "" {
		result = map[string]string{"failed": res.ErrorTitle}
	}
	if !c.record(w, r, "policy dry run result", audit.Record{PolicyRevision: out.Candidate.ID, Detail: result}) {
		return
	}
	c.renderStatus(w, r, status, "policy.html", "Policy", d)
}

// fieldsOf are the field maps of the operations the decisions are about, as
// the profiles in service have them.
func (c *console) fieldsOf(decisions []policy.Recorded) map[string]policy.OperationFields {
	out := map[string]policy.OperationFields{}
	for _, d := range decisions {
		key := policy.FieldsKey(d.Vendor, d.Operation)
		if _, ok := out[key]; !ok {
			req, resp, ids := c.o.Fields(d.Vendor, d.Operation)
			out[key] = policy.OperationFields{Request: req, Response: resp, Identifiers: ids}
		}
	}
	return out
}

// readUploads reads the uploaded policy files by name (at the folder's top:
// any path in a name is dropped).
func readUploads(headers []*multipart.FileHeader) (map[string][]byte, error) {
	if len(headers) == 0 {
		return nil, errors.New("choose at least one policy file (.rego, .json or .yaml)")
	}
	out := map[string][]byte{}
	for _, fh := range headers {
		name := filepath.Base(filepath.Clean("/" + fh.Filename))
		switch filepath.Ext(name) {
		case ".rego", ".json", ".yaml", ".yml":
		default:
			return nil, fmt.Errorf("%s: only .rego, .json and .yaml files make a policy", name)
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

// describe names files by name and SHA-256, for the dry run's record.
func describe(files map[string][]byte) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256(files[name])
		parts = append(parts, name+":"+hex.EncodeToString(sum[:]))
	}
	return strings.Join(parts, ",")
}

// candidateDir writes the policy folder in service, then the uploaded files
// over it, into a new temporary folder. Links in the folder are left out, as
// the policy loader leaves them out, and files are written as new files in a
// folder opened as an os.Root: nothing written here can land outside it.
func (c *console) candidateDir(files map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp("", "consentgate-dry-run-")
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return dir, err
	}
	defer root.Close()
	if src := c.o.Policy.Source().Dir; src != "" {
		if err := copyContents(src, root); err != nil {
			return dir, fmt.Errorf("copying the policy folder in service: %w", err)
		}
	}
	for name, data := range files {
		root.Remove(name)
		if err := writeNew(root, name, data); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// copyContents copies the folders and regular files under src into root.
func copyContents(src string, root *os.Root) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		switch {
		case d.IsDir():
			return root.Mkdir(rel, 0o700)
		case !d.Type().IsRegular():
			return nil // a link (the loader skips it too), a device, a pipe
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return writeNew(root, rel, data)
	})
}

func writeNew(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// recordedDecisions are the last n decisions recorded on this node, newest
// first, found within maxReplayScan records.
func (c *console) recordedDecisions(ctx context.Context, n int) ([]policy.Recorded, error) {
	var out []policy.Recorded
	q := audit.Query{HasDetail: "policy_input"}
	for scanned := 0; len(out) < n && scanned < maxReplayScan; {
		q.Limit, q.MaxScan = min(n-len(out), 500), maxReplayScan-scanned
		p, err := c.o.Audit.Timeline(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, rec := range p.Records {
			if rec.Allow != nil {
				out = append(out, policy.Recorded{Seq: rec.Seq, RequestID: rec.RequestID, App: rec.App, Vendor: rec.Vendor,
					Operation: rec.Operation, Purpose: rec.Purpose, Input: rec.Detail["policy_input"], Allow: *rec.Allow, Reasons: rec.Reasons})
			}
		}
		scanned += p.Scanned
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	return out, nil
}
