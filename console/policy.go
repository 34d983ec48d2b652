package console

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
}

type dryRunResult struct {
	Candidate string // its revision id
	Error     string // why it does not load
	Asked     int    // decisions asked for
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
	return policyData{Status: c.o.Policy.Status(), History: h, FromBundle: c.o.Policy.Source().Dir == ""}
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
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range names {
			if !yield(k) {
				return
			}
		}
	}) {
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

// Dry-run bounds: the upload, and the decisions replayed.
const (
	maxUpload     = 4 << 20
	defaultReplay = 1000
	maxReplay     = 20000
	maxChanges    = 200
)

// dryRun serves POST /console/policy/dry-run (admins): the uploaded files
// over the policy folder in service make a candidate, which is loaded as a
// reload would load it and asked the last N recorded questions; the page shows
// what would change and the diff. Nothing goes live.
func (c *console) dryRun(w http.ResponseWriter, r *http.Request) {
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
	dir, err := c.candidateDir(r.MultipartForm.File["files"])
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		res.Error = err.Error()
		c.renderStatus(w, r, http.StatusBadRequest, "policy.html", "Policy", d)
		return
	}
	cand, err := c.o.Policy.Candidate(r.Context(), dir)
	if err != nil {
		res.Error = strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		c.renderStatus(w, r, http.StatusUnprocessableEntity, "policy.html", "Policy", d)
		return
	}
	cur := cand.Current()
	res.Candidate, d.Diff = cur.ID, diffSources(c.o.Policy.Current().Sources, cur.Sources)
	res.MaxChanges = maxChanges
	if err := c.replay(r, cand, n, &res.Replay); err != nil {
		c.o.Logger.Error("dry run not replayed", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The recorded decisions could not be read.")
		return
	}
	if !c.record(w, r, "policy dry run", audit.Record{PolicyRevision: cur.ID, Detail: map[string]string{
		"replayed": strconv.Itoa(res.Replayed), "changed": strconv.Itoa(res.Changed)}}) {
		return
	}
	c.render(w, r, "policy.html", "Policy", d)
}

// candidateDir writes the policy folder in service, then the uploaded files
// over it (by name, at its top), into a new temporary folder.
func (c *console) candidateDir(files []*multipart.FileHeader) (string, error) {
	if len(files) == 0 {
		return "", errors.New("choose at least one policy file (.rego, .json or .yaml)")
	}
	dir, err := os.MkdirTemp("", "consentgate-dry-run-")
	if err != nil {
		return "", err
	}
	if src := c.o.Policy.Source().Dir; src != "" {
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			return dir, fmt.Errorf("the policy folder in service could not be copied: %w", err)
		}
	}
	for _, fh := range files {
		name := filepath.Base(filepath.Clean("/" + fh.Filename))
		switch filepath.Ext(name) {
		case ".rego", ".json", ".yaml", ".yml":
		default:
			return dir, fmt.Errorf("%s: only .rego, .json and .yaml files make a policy", name)
		}
		if err := copyUpload(fh, filepath.Join(dir, name)); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

func copyUpload(fh *multipart.FileHeader, path string) error {
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// replay asks cand the last n recorded decisions on this node, newest first.
func (c *console) replay(r *http.Request, cand *policy.Engine, n int, rp *policy.Replay) error {
	q := audit.Query{HasDetail: "policy_input", Limit: min(n, 500), MaxScan: 1 << 30}
	for asked := 0; asked < n; {
		q.Limit = min(n-asked, 500)
		p, err := c.o.Audit.Timeline(r.Context(), q)
		if err != nil {
			return err
		}
		for _, rec := range p.Records {
			if rec.Allow == nil {
				continue
			}
			if _, err := rp.Add(r.Context(), cand, c.o.Fields, policy.Recorded{Seq: rec.Seq, RequestID: rec.RequestID, App: rec.App,
				Vendor: rec.Vendor, Operation: rec.Operation, Purpose: rec.Purpose, Input: rec.Detail["policy_input"],
				Allow: *rec.Allow, Reasons: rec.Reasons}); err != nil {
				return err
			}
		}
		asked += len(p.Records)
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	return nil
}
