package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// In production both keys come from the secret provider: the signing key signs
// checkpoints, the HMAC key (keys.subject_hmac) hashes identifiers.
var (
	signingKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	hmacKey    = []byte("example key, 32 bytes or longer!")
)

func exampleOptions() audit.Options {
	return audit.Options{
		Node:       "gw-1",
		SigningKey: signingKey,
		Now:        func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) },
	}
}

// exampleLog opens a log in a new directory and writes one call's intent and outcome.
func exampleLog() (*audit.Log, string) {
	dir, _ := os.MkdirTemp("", "audit-example")
	l, err := audit.Open(filepath.Join(dir, "audit.db"), exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	allow := true
	intent := audit.Record{
		Kind: audit.KindIntent, RequestID: "req-1", DecisionID: "dec-1", App: "onboarding-web",
		Vendor: "airbank", Operation: "airbank.personalData", Method: "GET",
		PathTemplate: "/openapi/glClientIdentity/v1/personalData", ConsentID: "c-1",
		Purpose: "kyc-onboarding", SubjectHMAC: audit.HMAC(hmacKey, "user-42"), Allow: &allow,
		Reasons: []string{"consent active", "purpose covered"},
	}
	if _, err := l.Append(ctx, intent); err != nil {
		log.Fatal(err) // the gateway answers 503 and does not call the vendor
	}
	outcome := intent
	outcome.Kind, outcome.Status, outcome.LatencyUS = audit.KindOutcome, 200, 8400
	outcome.Identifiers = []string{audit.HMAC(hmacKey, "915714/4238")} // the birth number the vendor returned
	outcome.Disclosed, outcome.Withheld = []string{"names", "surname"}, []string{"birthNumber"}
	if _, err := l.Append(ctx, outcome); err != nil {
		log.Fatal(err)
	}
	return l, dir
}

func ExampleLog_Append() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	l, err := audit.Open(filepath.Join(dir, "audit.db"), exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Append returns once the record is on disk (strict mode), with what the log set.
	r, err := l.Append(context.Background(), audit.Record{
		Kind: audit.KindSystem, Detail: map[string]string{"event": "started"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Seq, r.Node, r.Time.Format(time.RFC3339), len(r.Hash), l.Head().Seq)

	// A raw identifier where an HMAC belongs is refused, and never written.
	_, err = l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, SubjectHMAC: "915714/4238"})
	fmt.Println(errors.Is(err, audit.ErrInvalid))
	// Output:
	// 1 gw-1 2026-11-21T10:00:00Z 64 1
	// true
}

func ExampleLog_Export() {
	l, dir := exampleLog()
	defer os.RemoveAll(dir)
	defer l.Close()
	_, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, RequestID: "req-2", Vendor: "kb"})
	if err != nil {
		log.Fatal(err)
	}

	// Only Air Bank's calls: kb's record becomes a stub that keeps the chain.
	var out bytes.Buffer
	if err := l.Export(context.Background(), &out, audit.Filter{Vendor: "airbank"}); err != nil {
		log.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	fmt.Println(strings.Contains(lines[0], `"partial":true`))
	for _, line := range lines[1:] {
		var r audit.Record
		json.Unmarshal([]byte(line), &r)
		fmt.Printf("%d %s %q\n", r.Seq, r.Kind, r.Vendor)
	}
	rep, err := audit.Verify(&out, l.PublicKey())
	fmt.Println(rep.Records, rep.Elided, rep.Partial, err)
	// Output:
	// true
	// 1 intent "airbank"
	// 2 outcome "airbank"
	// 3 elided ""
	// 2 1 true <nil>
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.db")
	l, err := audit.Open(path, exampleOptions())
	if err != nil {
		log.Fatal(err)
	}

	// One process per file: a second gateway on the same data directory is refused.
	_, err = audit.Open(path, exampleOptions())
	fmt.Println(errors.Is(err, audit.ErrLocked))

	l.Append(context.Background(), audit.Record{Kind: audit.KindSystem})
	id := l.LogID()
	l.Close() // the final checkpoint is record 2

	l, err = audit.Open(path, exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	fmt.Println(l.LogID() == id, l.Head().Seq)
	// Output:
	// true
	// true 2
}

func ExampleVerify() {
	l, dir := exampleLog()
	defer os.RemoveAll(dir)
	defer l.Close()
	var export bytes.Buffer
	if err := l.Export(context.Background(), &export, audit.Filter{}); err != nil {
		log.Fatal(err)
	}
	// The auditor holds the public key from elsewhere, e.g. `consentgate audit pubkey`.
	pub, err := audit.ParsePublicKeyPEM(audit.PublicKeyPEM(l.PublicKey()))
	if err != nil {
		log.Fatal(err)
	}

	rep, err := audit.Verify(bytes.NewReader(export.Bytes()), pub)
	fmt.Println(rep.Records, rep.Partial, rep.Incomplete, err)

	// One changed byte in record 2, and the report names it.
	changed := bytes.Replace(export.Bytes(), []byte(`"status":200`), []byte(`"status":403`), 1)
	_, err = audit.Verify(bytes.NewReader(changed), pub)
	var verr *audit.VerifyError
	if errors.As(err, &verr) {
		fmt.Println(verr.Seq, verr.Reason)
	}
	// Output:
	// 2 false [] <nil>
	// 2 hash mismatch: the record was changed after it was written
}

func ExampleVerifyDB() {
	l, dir := exampleLog()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.db")
	if err := l.Close(); err != nil { // writes the final checkpoint
		log.Fatal(err)
	}
	// A file the gateway closed cleanly ends with a checkpoint: require it.
	rep, err := audit.VerifyDB(path, l.PublicKey(), audit.RequireVouched())
	fmt.Println(rep.Records, rep.Checkpoints, rep.Unvouched, rep.Head.Seq, err)
	// Output:
	// 2 1 0 3 <nil>
}

func ExampleSearch() {
	l, dir := exampleLog()
	defer os.RemoveAll(dir)
	l.Close()

	// `consentgate audit search --identifier 9157144238` hashes what the auditor typed
	// with the same key and rules, and looks for that.
	err := audit.Search(context.Background(), filepath.Join(dir, "audit.db"), audit.HMAC(hmacKey, "915714 / 4238"),
		func(r audit.Record) error {
			fmt.Println(r.Seq, r.Kind, r.RequestID, r.Vendor, r.Disclosed)
			return nil
		})
	fmt.Println(err)
	// Output:
	// 2 outcome req-1 airbank [names surname]
	// <nil>
}

func ExampleHMAC() {
	fmt.Println(audit.HMAC(hmacKey, "915714/4238") == audit.HMAC(hmacKey, " 9157144238 "))
	fmt.Println(audit.HMAC(hmacKey, "AB123456") == audit.HMAC(hmacKey, "ab123456"))
	// Output:
	// true
	// false
}
