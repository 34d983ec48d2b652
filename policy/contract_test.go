package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/configs"
)

// shippedContract is the shipped vendor profiles as the gateway holds a
// policy to them.
func shippedContract(t *testing.T) *Contract {
	t.Helper()
	cfg, err := configs.LoadFS(configs.FS, "consentgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := &Contract{Categories: slices.DeleteFunc(slices.Clone(configs.Categories), func(s string) bool { return s == "metadata" })}
	for _, v := range cfg.Vendors {
		for _, op := range v.Operations {
			c.Operations = append(c.Operations, ContractOperation{Vendor: v.ID, ID: op.ID, Method: op.Method, Path: op.Path,
				Body: op.Body, Class: op.Class, Erasure: op.Erases != "", RequestFields: op.SentFields(), ResponseFields: op.Fields.Response,
				Identifiers: op.Identifiers()})
		}
	}
	return c
}

// shippedWith is a copy of the shipped policies with one edit to data.yaml.
func shippedWith(t *testing.T, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	if err := configs.WritePolicies(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "data.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if old != "" && !strings.Contains(string(data), old) {
		t.Fatalf("data.yaml has no %q", old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineOf is the line of data.yaml that holds s.
func lineOf(t *testing.T, dir, s string) string {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "data.yaml"))
	for i, l := range strings.Split(string(data), "\n") {
		if containsToken(l, s) {
			return filepath.Join(dir, "data.yaml") + ":" + itoa(i+1) + ":"
		}
	}
	t.Fatalf("no %q in data.yaml", s)
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// Issue 14 finding 10: a revision that breaks the decision contract went live
// (identity: bogus-action was accepted by reload and by policy check, and calls
// for that purpose then got "policy decision malformed"). It is refused with
// the file and line, and the revision in service stays.
func TestContractRefusesRevisionsThatDoNotFit(t *testing.T) {
	contract := shippedContract(t)
	tests := []struct{ name, old, new, at, want string }{
		{"an action consentgate cannot apply", "      identity: keep\n      contact: keep\n", "      identity: bogus-action\n      contact: keep\n", "bogus-action", `maps identity to "bogus-action"`},
		{"a tokenize variant consentgate does not know", "      identity: keep\n      contact: keep\n", "      identity: tokenize:names\n      contact: keep\n", "tokenize:names", `maps identity to "tokenize:names"`},
		{"an unknown category", "      pep: keep", "      politics: keep", "politics", `names category "politics"`},
		{"an unknown vendor", "vendors: [kb, airbank]\n    purposes: [age-verification]", "vendors: [kb, airbnb]\n    purposes: [age-verification]", "airbnb", `allowed vendor "airbnb"`},
		{"an undefined purpose", "purposes: [aml-screening]", "purposes: [aml-screenin]", "aml-screenin", `allowed purpose "aml-screenin"`},
		{"a tenant grant that is no tenant operation", "tenant_operations: [banqware.tenantUrls]", "tenant_operations: [banqware.kyc]", "banqware.kyc", `granted "banqware.kyc"`},
		{"an unknown consent-free operation", "  - banqware.updateCallback", "  - banqware.updateCallbak", "banqware.updateCallbak", `names "banqware.updateCallbak"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := shippedWith(t, tt.old, tt.new)
			_, err := load(context.Background(), Source{Dir: dir}, -1, contract)
			if err == nil {
				t.Fatal("loaded")
			}
			if at := lineOf(t, dir, tt.at); !strings.Contains(err.Error(), at) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %s and %q", err, at, tt.want)
			}
			if Check(context.Background(), dir, contract) == nil {
				t.Error("policy check passed it")
			}
		})
	}
	if _, err := load(context.Background(), Source{Dir: shippedWith(t, "", "")}, -1, contract); err != nil {
		t.Errorf("the shipped policy: %v", err)
	}
}

// A refused reload keeps the revision in service and says why at the status;
// the next good one clears that and says so in the log.
func TestReloadRecoversFromARefusedRevision(t *testing.T) {
	dir := shippedWith(t, "", "")
	var logs strings.Builder
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}, Contract: shippedContract(t),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	good := e.Revision()
	file := filepath.Join(dir, "data.yaml")
	data, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(data), "      identity: keep\n", "      identity: bogus-action\n", 1)), 0o600)
	if err := e.Reload(context.Background()); err == nil || e.Revision() != good {
		t.Fatalf("a revision breaking the contract: %v, serving %s", err, e.Revision())
	}
	if st := e.Status(); !strings.Contains(st.LastError, "bogus-action") || st.ReloadFailures != 1 {
		t.Errorf("status after the refusal %+v", st)
	}
	os.WriteFile(file, append(data, []byte("# edited\n")...), 0o600)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.LastError != "" || st.Revision != good {
		t.Errorf("status after the recovery %+v", st)
	}
	if !strings.Contains(logs.String(), "policy reload succeeded after a failure") {
		t.Errorf("the log does not say it recovered:\n%s", logs.String())
	}
}
