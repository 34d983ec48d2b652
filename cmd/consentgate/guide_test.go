package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/logsink"
)

var shBlockRE = regexp.MustCompile("(?s)```sh\n(.*?)```")

// guideCommands returns the consentgate commands of a guide's sh blocks.
func guideCommands(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range shBlockRE.FindAllStringSubmatch(string(data), -1) {
		for _, line := range strings.Split(strings.TrimSpace(m[1]), "\n") {
			if strings.HasPrefix(line, "consentgate ") {
				out = append(out, line)
			}
		}
	}
	return out
}

// The auditor's guide works as written: every command in it runs against a dev
// gateway (the admin-API ones while it runs, the file ones after it stopped).
func TestAuditorGuideCommands(t *testing.T) {
	cmds := guideCommands(t, "../../docs/auditor.md")
	if len(cmds) < 8 {
		t.Fatalf("found only %d commands in the guide", len(cmds))
	}
	dir := t.TempDir()
	e, stop := startTestDevStoppable(t, dir)
	defer stop()
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	cfg := writeDevConfig(t, dir)
	work := t.TempDir()
	t.Chdir(work)

	runGuide := func(line string) {
		t.Helper()
		line = strings.NewReplacer("$DIR", dir, "$CONFIG", cfg, "$ARCHIVE", filepath.Join(work, "archive"), "https://127.0.0.1:9443", e.adminURL()).Replace(line)
		var redirect string
		if before, after, ok := strings.Cut(line, " > "); ok {
			line, redirect = before, strings.TrimSpace(after)
		}
		args := strings.Fields(strings.TrimPrefix(line, "consentgate "))
		out := &logsink.Buffer{}
		ctx := context.Background()
		if args[1] == "tail" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Second)
			defer cancel()
		}
		if err := run(ctx, args, out, out); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if redirect != "" {
			if err := os.WriteFile(redirect, []byte(out.String()), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if args[1] == "tail" && !strings.Contains(out.String(), `"kind":"outcome"`) {
			t.Errorf("%s printed no records", line)
		}
	}
	var later []string
	for _, c := range cmds {
		if strings.Contains(c, "--admin") {
			runGuide(c)
		} else {
			later = append(later, c)
		}
	}
	stop()
	// Two more replicas' exports, for the merge.
	t0 := time.Now().UTC()
	replicaExport(t, work, "gw-0", []time.Time{t0, t0.Add(2 * time.Millisecond)})
	replicaExport(t, work, "gw-1", []time.Time{t0.Add(time.Millisecond)})
	for _, c := range later {
		runGuide(c)
	}
	for _, f := range []string{"audit.pub", "audit.jsonl", "live.jsonl", "airbank.jsonl", "merged.jsonl"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("the guide's %s was not written: %v", f, err)
		}
	}
}

// The security team's guide works as written: test, check, eval, replay.
func TestSecurityGuideCommands(t *testing.T) {
	cmds := guideCommands(t, "../../docs/security.md")
	if len(cmds) != 4 {
		t.Fatalf("found %d commands in the guide, want 4", len(cmds))
	}
	dir := t.TempDir()
	e, stop := startTestDevStoppable(t, dir)
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", under("dev-kyc", "account-aggregation"))
	stop()
	cfg := writeDevConfig(t, dir)
	exp := filepath.Join(dir, "audit.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	work := t.TempDir()
	writeTestFile(t, filepath.Join(work, "input.json"), `{"app":{"id":"onboarding-web","role":"app"},"vendor":"airbank",
		"operation":"airbank.cards","body":"json","purpose":"account-aggregation","consent_id":"",
		"fields":{"request":{},"response":{"data[].cardNumber":"card"}},"request":{"fields":[]},"now":"2026-11-21T10:00:00Z"}`)
	t.Chdir(work)
	for _, line := range cmds {
		line = strings.NewReplacer("$POLICY", filepath.Join(dir, "policies"), "$CANDIDATE", filepath.Join(dir, "policies"),
			"$CONFIG", cfg, "$AUDIT", exp).Replace(line)
		args := strings.Fields(strings.TrimPrefix(line, "consentgate "))
		out := &logsink.Buffer{}
		if err := run(context.Background(), args, out, out); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if args[1] == "eval" && !strings.Contains(out.String(), "no consent header") {
			t.Errorf("eval printed:\n%s", out)
		}
		if args[1] == "replay" && !strings.Contains(out.String(), "1 decisions replayed, 0 would change") {
			t.Errorf("replay printed:\n%s", out)
		}
	}
}

// shellFields splits a command line as a POSIX shell would for the guides'
// commands: blanks separate words, double quotes group them.
func shellFields(line string) []string {
	var out []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, word.String())
	}
	return out
}

// The operator's guide works as written: the CA starts, an app certificate
// is issued from it, a vendor CSR is made and what the vendor's CA returns for
// it is inspected.
func TestOperatorGuideCommands(t *testing.T) {
	cmds := guideCommands(t, "../../docs/operator.md")
	if len(cmds) != 5 {
		t.Fatalf("found %d commands in the guide, want 5: %q", len(cmds), cmds)
	}
	_, serveConfig, _ := writeServeConfig(t)
	caDir, outDir, work := filepath.Join(t.TempDir(), "ca"), t.TempDir(), t.TempDir()
	t.Chdir(work)
	for _, line := range cmds {
		line = strings.NewReplacer("/var/lib/consentgate-ca", caDir, "0.0.0.0:9000", "127.0.0.1:0", "$CA", caDir, "$OUT", outDir,
			"/etc/consentgate/consentgate.yaml", serveConfig).Replace(line)
		args := shellFields(strings.TrimPrefix(line, "consentgate "))
		out := &logsink.Buffer{}
		switch args[0] + " " + args[1] {
		case "ca serve":
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, out, out) }()
			waitForLine(t, out, regexp.MustCompile(`ca ready url=https://ca.example-bank.internal:\d+ `), done, out)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			continue
		case "certs inspect":
			// What the qualified CA would send back for the guide's CSR.
			signCSRForGuide(t, filepath.Join(work, "banqware.csr"), filepath.Join(work, "banqware.crt"))
		}
		if err := run(context.Background(), args, out, out); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		switch args[1] {
		case "issue":
			pair, err := tls.LoadX509KeyPair(filepath.Join(outDir, "onboarding-web.crt"), filepath.Join(outDir, "onboarding-web.key"))
			if err != nil || pair.Leaf.URIs[0].String() != "spiffe://consentgate.example-bank.cz/app/onboarding-web" || len(pair.Certificate) != 2 {
				t.Errorf("issued certificate: %v", err)
			}
		case "inspect":
			if !strings.Contains(out.String(), "IČO:           27074358 (from organizationIdentifier NTRCZ)") ||
				!strings.Contains(out.String(), "organisation:  Onboarding Example s.r.o.") {
				t.Errorf("inspect printed:\n%s", out)
			}
		}
	}
}

// signCSRForGuide signs csrFile with a stand-in of a qualified CA.
func signCSRForGuide(t *testing.T, csrFile, certFile string) {
	t.Helper()
	data, err := os.ReadFile(csrFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", csrFile)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ica, err := certs.NewCA(pkix.Name{CommonName: "I.CA Qualified 2 CA/RSA 02/2016 (test)"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ica.Sign(&x509.Certificate{RawSubject: csr.RawSubject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, csr.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, certFile, string(certs.EncodeCertificates(cert)))
}
