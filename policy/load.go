package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Source says where policies come from: a directory of .rego and data files, or an
// OPA bundle (a .tar.gz file or an https URL), optionally signed.
type Source struct {
	Dir    string
	Bundle string
	// VerificationKey is a PEM public key; when set, bundles must be signed with it.
	VerificationKey string
	// KeyAlgorithm is the signing algorithm (default RS256).
	KeyAlgorithm string
	// Client fetches URL bundles (default: a client with a 30 s timeout).
	Client *http.Client
}

func (s Source) String() string {
	if s.Dir != "" {
		return s.Dir
	}
	return s.Bundle
}

// revision is one loaded, compiled and prepared policy.
type revision struct {
	id       string
	query    rego.PreparedEvalQuery
	loadedAt time.Time
	files    []string
	// sources are the revision's text by file (modules as written, the data
	// as indented JSON), for the console's diff of two revisions.
	sources  map[string]string
	purposes []string
	returnTo map[string][]*url.URL
	memo     *memo
}

// isTest keeps *_test.rego out of the serving policy: tests belong to
// `consentgate policy test`, not to decisions.
func isTest(abspath string, info os.FileInfo, depth int) bool {
	return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
}

// dataFiles are the data documents in a policy folder, as the loader reads
// them (JSON and YAML at any depth), for the revision's file list.
func dataFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			switch filepath.Ext(p) {
			case ".json", ".yaml", ".yml":
				out = append(out, relative(dir, p))
			}
		}
		return nil
	})
	return out
}

// readBundle loads the source as an OPA bundle, whatever its form.
func (s Source) readBundle(ctx context.Context) (*bundle.Bundle, error) {
	var vc *bundle.VerificationConfig
	if s.VerificationKey != "" {
		alg := s.KeyAlgorithm
		if alg == "" {
			alg = "RS256"
		}
		vc = bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{"consentgate": {Key: s.VerificationKey, Algorithm: alg}}, "consentgate", "", nil)
	}
	switch {
	case s.Dir != "":
		fl := loader.NewFileLoader().WithFilter(isTest).WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(vc == nil)
		if vc != nil {
			fl = fl.WithBundleVerificationConfig(vc)
		}
		b, err := fl.AsBundle(s.Dir)
		if err != nil {
			return nil, fmt.Errorf("policy does not load:\n%w", loadError(s.Dir, err))
		}
		return b, nil
	case strings.HasPrefix(s.Bundle, "https://") || strings.HasPrefix(s.Bundle, "http://"):
		data, err := s.fetch(ctx)
		if err != nil {
			return nil, err
		}
		r := bundle.NewReader(strings.NewReader(string(data))).WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(vc == nil)
		if vc != nil {
			r = r.WithBundleVerificationConfig(vc)
		}
		b, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", s.Bundle, err)
		}
		return &b, nil
	case s.Bundle != "":
		fl := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(vc == nil)
		if vc != nil {
			fl = fl.WithBundleVerificationConfig(vc)
		}
		return fl.AsBundle(s.Bundle)
	default:
		return nil, fmt.Errorf("no policy source: set a directory or a bundle")
	}
}

func (s Source) fetch(ctx context.Context) ([]byte, error) {
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Bundle, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching bundle: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching bundle %s: status %d", s.Bundle, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// load builds a revision: read, compile, prepare the query once, and evaluate a
// smoke input that must yield a well-formed decision.
func load(ctx context.Context, src Source, memoEntries int, contract *Contract) (*revision, error) {
	b, err := src.readBundle(ctx)
	if err != nil {
		return nil, err
	}
	data := b.Data
	if data == nil {
		data = map[string]any{}
	}
	modules, files, id, err := identify(src, b, data)
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithEnablePrintStatements(false).WithCapabilities(capabilities)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, compileError(src.Dir, compiler.Errors)
	}
	pq, err := rego.New(
		rego.Query(Query),
		rego.Compiler(compiler),
		// AST values on read: data is converted once at load, not on every lookup.
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: preparing %s: %w", src, Query, err)
	}
	rev := &revision{id: id, query: pq, loadedAt: time.Now(), files: files, sources: sourcesOf(src, b, data),
		memo: newMemo(compiler, modules, memoEntries)}
	if ps, ok := data["purposes"].(map[string]any); ok {
		rev.purposes = slices.Sorted(maps.Keys(ps))
	}
	if rev.returnTo, err = returnTargets(data); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if err := smoke(ctx, rev); err != nil {
		return nil, fmt.Errorf("%s: smoke evaluation: %w", src, err)
	}
	if contract != nil {
		if err := contract.check(ctx, rev, data, src.Dir); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	return rev, nil
}

// identify lists a bundle's modules and files and names the revision: a hash
// of the modules (by their path within the folder, not the folder's name: the
// same files are the same revision however the folder is reached) and data.
func identify(src Source, b *bundle.Bundle, data map[string]any) (map[string]*ast.Module, []string, string, error) {
	modules := map[string]*ast.Module{}
	var files []string
	h := sha256.New()
	sort.Slice(b.Modules, func(i, j int) bool { return b.Modules[i].Path < b.Modules[j].Path })
	for _, m := range b.Modules {
		modules[m.Path] = m.Parsed
		files = append(files, relative(src.Dir, m.Path))
		name := m.Path
		if rel, err := filepath.Rel(src.Dir, m.Path); src.Dir != "" && err == nil {
			name = filepath.ToSlash(rel)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(m.Raw))
		h.Write(m.Raw)
	}
	if len(modules) == 0 {
		return nil, nil, "", fmt.Errorf("%s: no policy modules", src)
	}
	if src.Dir != "" {
		files = append(files, dataFiles(src.Dir)...)
		sort.Strings(files)
	}
	// encoding/json sorts map keys, so the same data always hashes the same.
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: data: %w", src, err)
	}
	h.Write(dataJSON)
	return modules, files, hex.EncodeToString(h.Sum(nil))[:16], nil
}

// capabilities are OPA's built-in functions less those that reach outside the
// decision: a policy (or a candidate an admin uploads for a dry run) decides
// from its input and data, and must not fetch URLs, resolve names, read files
// (the JSON Schema built-ins resolve "$ref": "file://…" from the local disk,
// whatever allow_net says) or read the process's environment. The built-ins
// kept are listed in testdata/builtins.txt: a new OPA version that adds one
// fails a test until someone has judged it.
var capabilities = func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = slices.DeleteFunc(c.Builtins, func(b *ast.Builtin) bool { return denied[b.Name] })
	c.AllowNet = []string{}
	return c
}()

var denied = map[string]bool{"http.send": true, "net.lookup_ip_addr": true, "opa.runtime": true,
	"json.match_schema": true, "json.verify_schema": true}

// sourcesOf is a revision's text by file: each module as written, and each
// data file of a folder as written (of a bundle, its data merged, as indented
// JSON).
func sourcesOf(src Source, b *bundle.Bundle, data map[string]any) map[string]string {
	out := map[string]string{}
	name := func(p string) string {
		if rel, err := filepath.Rel(src.Dir, p); src.Dir != "" && err == nil {
			return filepath.ToSlash(rel)
		}
		return p
	}
	for _, m := range b.Modules {
		out[name(m.Path)] = string(m.Raw)
	}
	if src.Dir == "" {
		if d, err := json.MarshalIndent(data, "", "  "); err == nil {
			out["(data)"] = string(d) + "\n"
		}
		return out
	}
	for _, f := range dataFiles(src.Dir) {
		if raw, err := os.ReadFile(f); err == nil {
			out[name(f)] = string(raw)
		}
	}
	return out
}

// smoke evaluates a call with no consent: any policy that cannot answer it, or
// answers allow, is not put into service.
func smoke(ctx context.Context, rev *revision) error {
	in := Input{App: App{ID: "smoke-test", Role: "app"}, Vendor: "smoke", Operation: "smoke.test", Method: "GET",
		Path: "/", Body: "json", Now: time.Now()}
	d := evaluate(ctx, rev, in.value(), time.Second)
	if d.Err != "" {
		return fmt.Errorf("%s: %s", d.Reasons[0], d.Err)
	}
	if d.Allow {
		return fmt.Errorf("a call without consent by an unknown app was allowed")
	}
	return nil
}

// compileError lists each error as file:line: message, with paths relative to
// the policy directory so they match what the engineer edits.
func compileError(dir string, errs ast.Errors) error {
	var lines []string
	for _, e := range errs {
		if e.Location != nil {
			lines = append(lines, fmt.Sprintf("%s:%d: %s", relative(dir, e.Location.File), e.Location.Row, e.Message))
		} else {
			lines = append(lines, e.Message)
		}
	}
	return fmt.Errorf("policy does not compile:\n%s", strings.Join(lines, "\n"))
}

func relative(dir, path string) string {
	if dir == "" {
		return path
	}
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Join(dir, rel)
	}
	return path
}
