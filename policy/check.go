package policy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Check parses and compiles every module in dir, tests included, loads the
// serving policy (with its smoke evaluation and, when given, the contract the
// gateway holds it to), and reports files that are not in `opa fmt` form: what
// a reviewer should see before a policy change ships.
func Check(ctx context.Context, dir string, contract *Contract) error {
	if _, _, err := tester.Load([]string{dir}, nil); err != nil {
		return fmt.Errorf("policy does not compile:\n%w", loadError(dir, err))
	}
	if _, err := load(ctx, Source{Dir: dir}, -1, contract); err != nil {
		return err
	}
	var unformatted []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		formatted, err := format.Source(p, src)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !bytes.Equal(src, formatted) {
			unformatted = append(unformatted, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(unformatted) > 0 {
		return fmt.Errorf("not in opa fmt form (run opa fmt -w): %s", strings.Join(unformatted, ", "))
	}
	return nil
}

// Test runs the Rego tests (test_ rules) in dir with OPA's tester, writes one
// line per failure and a summary to w, and returns an error if any test did not
// pass. Verbose lists passing tests too and, under each failure, the
// expression that failed with its variables, as opa test --explain fails does.
func Test(ctx context.Context, dir string, w io.Writer, verbose bool) error {
	modules, store, err := tester.LoadWithRegoVersion([]string{dir}, nil, ast.RegoV1)
	if err != nil {
		return fmt.Errorf("loading %s: %w", dir, err)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return err
	}
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).EnableTracing(verbose).RunTests(ctx, txn)
	if err != nil {
		return fmt.Errorf("loading %s: %w", dir, err)
	}
	var passed, failed int
	for r := range ch {
		switch {
		case r.Skip:
			fmt.Fprintf(w, "SKIP %s.%s\n", r.Package, r.Name)
		case r.Pass():
			passed++
			if verbose {
				fmt.Fprintf(w, "PASS %s.%s (%s)\n", r.Package, r.Name, r.Duration)
			}
		default:
			failed++
			reportFailure(w, r)
		}
	}
	fmt.Fprintf(w, "%s: %d passed, %d failed\n", dir, passed, failed)
	switch {
	case failed > 0:
		return fmt.Errorf("%d of %d policy tests failed", failed, passed+failed)
	case passed == 0:
		return fmt.Errorf("no policy tests found in %s", dir)
	}
	return nil
}

func reportFailure(w io.Writer, r *tester.Result) {
	loc := ""
	if r.Location != nil {
		loc = fmt.Sprintf("%s:%d: ", r.Location.File, r.Location.Row)
	}
	if r.Error != nil {
		fmt.Fprintf(w, "ERROR %s%s.%s: %v\n", loc, r.Package, r.Name, r.Error)
		return
	}
	fmt.Fprintf(w, "FAIL %s%s.%s\n", loc, r.Package, r.Name)
	// The last expression that failed in the test's own queries is the one
	// that made it fail (inside an every, the failing body expression).
	for _, e := range slices.Backward(r.Trace) {
		if e.Op != topdown.FailOp || e.Location == nil || e.QueryID == 0 {
			continue
		}
		if expr, ok := e.Node.(*ast.Expr); ok {
			if _, every := expr.Terms.(*ast.Every); every {
				continue
			}
		}
		var buf bytes.Buffer
		topdown.PrettyEvent(&buf, e, topdown.PrettyEventOpts{PrettyVars: true})
		fmt.Fprintf(w, "    failed at %s:%d:\n", e.Location.File, e.Location.Row)
		for line := range strings.SplitSeq(strings.TrimRight(buf.String(), "\n"), "\n") {
			fmt.Fprintf(w, "      %s\n", strings.TrimPrefix(line, "\t"))
		}
		return
	}
}
