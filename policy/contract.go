package policy

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Contract is what a policy revision must fit before it serves: the vendor
// operations the gateway serves, with their field maps, and the data
// categories they speak in. A revision whose data names anything else (an
// action consentgate cannot apply, an unknown category, vendor, operation or
// purpose), or that answers a generated call with a malformed decision, is
// refused with the file and line, and the revision in service stays.
type Contract struct {
	Categories []string
	Operations []ContractOperation
}

// ContractOperation is one vendor operation as the policy input shows it.
type ContractOperation struct {
	Vendor, ID, Method, Path, Body, Class string
	Erasure                               bool
	RequestFields, ResponseFields         map[string]string
	Identifiers                           []string
}

// check validates the revision's data against the contract, then evaluates a
// call of every operation for every purpose under a consent covering all.
func (c *Contract) check(ctx context.Context, rev *revision, data map[string]any, dir string) error {
	var problems []string
	fail := func(token, format string, args ...any) {
		problems = append(problems, locate(dir, token)+fmt.Sprintf(format, args...))
	}
	vendors, ops := map[string]bool{}, map[string]ContractOperation{}
	for _, op := range c.Operations {
		vendors[op.Vendor], ops[op.ID] = true, op
	}
	purposes, _ := data["purposes"].(map[string]any)
	for name, def := range purposes {
		d, _ := def.(map[string]any)
		cats, _ := d["categories"].(map[string]any)
		for cat, action := range cats {
			if !slices.Contains(c.Categories, cat) {
				fail(cat, "purpose %s names category %q, which no vendor profile uses (%s)", name, cat, strings.Join(c.Categories, ", "))
			}
			if a, _ := action.(string); !ValidCategoryAction(a) {
				fail(fmt.Sprint(action), "purpose %s maps %s to %q, which is not an action consentgate can apply", name, cat, action)
			}
		}
		if a, ok := d["age_source_action"]; ok {
			if s, _ := a.(string); !ValidAction(s) {
				fail(fmt.Sprint(a), "purpose %s: age_source_action %q is not an action consentgate can apply", name, a)
			}
		}
	}
	apps, _ := data["apps"].(map[string]any)
	for name, def := range apps {
		d, _ := def.(map[string]any)
		for _, v := range strings1(d["vendors"]) {
			if !vendors[v] {
				fail(v, "app %s is allowed vendor %q, which has no profile", name, v)
			}
		}
		for _, p := range strings1(d["purposes"]) {
			if _, ok := purposes[p]; !ok {
				fail(p, "app %s is allowed purpose %q, which data.purposes does not define", name, p)
			}
		}
		for _, id := range strings1(d["tenant_operations"]) {
			if op, ok := ops[id]; !ok || op.Class != "tenant" {
				fail(id, "app %s is granted %q, which is no tenant operation of any profile", name, id)
			}
		}
	}
	for _, id := range strings1(data["consent_free_operations"]) {
		if _, ok := ops[id]; !ok {
			fail(id, "consent_free_operations names %q, which no profile defines", id)
		}
	}
	if len(problems) == 0 {
		problems = c.evaluate(ctx, rev, data, purposes)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("the policy does not fit the decision contract:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

// evaluate asks the revision about every operation under every purpose, for
// an app allowed the vendor, under a consent covering every category: each
// answer must be a well-formed decision.
func (c *Contract) evaluate(ctx context.Context, rev *revision, data, purposes map[string]any) []string {
	names := []string{""}
	for p := range purposes {
		names = append(names, p)
	}
	sort.Strings(names)
	apps, _ := data["apps"].(map[string]any)
	now := time.Now()
	var problems []string
	for _, op := range c.Operations {
		app := "contract-check"
		for name, def := range apps {
			if d, _ := def.(map[string]any); slices.Contains(strings1(d["vendors"]), op.Vendor) {
				app = name
			}
		}
		for _, p := range names {
			in := Input{App: App{ID: app, Role: "app"}, Vendor: op.Vendor, Operation: op.ID, Method: op.Method, Path: op.Path,
				Body: op.Body, Class: op.Class, Erasure: op.Erasure, Purpose: p, ConsentID: "contract-check",
				Consent: &Consent{ID: "contract-check", App: app, Subject: strings.Repeat("0", 64), Vendors: []string{op.Vendor},
					Purposes: names[1:], Categories: c.Categories, Status: "active", GrantedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
				RequestFields: op.RequestFields, ResponseFields: op.ResponseFields, Identifiers: op.Identifiers, Present: slices.Sorted(maps.Keys(op.RequestFields)), Now: now}
			if d := evaluate(ctx, rev, in.value(), 5*time.Second); d.Err != "" {
				problems = append(problems, fmt.Sprintf("%s under purpose %q: %s: %s", op.ID, p, d.Reasons[0], d.Err))
			}
		}
	}
	return problems
}

func strings1(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// locate finds where token first stands in the policy directory's data files,
// as "file:line: ", so an error points at the line to edit.
func locate(dir, token string) string {
	if dir == "" || token == "" {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, file := range append(files, more...) {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if i := strings.Index(text, "#"); i >= 0 {
				text = text[:i]
			}
			if containsToken(text, token) {
				f.Close()
				return fmt.Sprintf("%s:%d: ", file, line)
			}
		}
		f.Close()
	}
	return ""
}

// containsToken reports whether token stands in text as a word of its own.
func containsToken(text, token string) bool {
	for i := strings.Index(text, token); i >= 0; {
		before, after := i-1, i+len(token)
		word := func(j int) bool {
			if j < 0 || j >= len(text) {
				return false
			}
			c := text[j]
			return c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		}
		if !word(before) && !word(after) {
			return true
		}
		next := strings.Index(text[i+1:], token)
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}
