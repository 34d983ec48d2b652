package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openLog12 is a running log of 12 sample records with a checkpoint after every five:
// 1-5 records, 6 checkpoint, 7-11 records, 12 checkpoint, 13-14 records.
func openLog12(t *testing.T) *Log {
	t.Helper()
	o := testOptions(t)
	o.CheckpointEvery = 5
	l, _ := MustOpen(t, o)
	appendN(t, l, 12)
	return l
}

func TestExportVerifies(t *testing.T) {
	l := openLog12(t)
	lines := exportOf(t, l, Filter{})
	if len(lines) != 15 {
		t.Fatalf("%d lines, want a header and 14 records", len(lines))
	}
	h, verr := parseHeader([]byte(lines[0]))
	if verr != nil {
		t.Fatal(verr)
	}
	if h.LogID != l.LogID() || h.Node != "node-1" || h.Partial || h.Head.Seq != 14 || h.Head.Hash != l.Head().Hash ||
		h.PublicKey != hex.EncodeToString(l.PublicKey().(ed25519.PublicKey)) || h.Signature == "" {
		t.Errorf("header %+v", h)
	}
	rep, err := Verify(strings.NewReader(joinLines(lines)), l.PublicKey(), RequireVouched())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 12 || rep.Checkpoints != 2 || rep.Elided != 0 || rep.Partial || rep.Unvouched != 0 ||
		rep.Head.Seq != 14 || rep.LogID != l.LogID() || len(rep.Incomplete) != 0 {
		t.Errorf("report %+v", rep)
	}
	// Export lines are the stored lines.
	if err := SearchAllOpen(l, func(seq uint64, v []byte) {
		if seq <= 14 && lines[seq] != string(v) {
			t.Errorf("line %d differs from the stored record", seq)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// SearchAllOpen calls fn with every stored line of a running log.
func SearchAllOpen(l *Log, fn func(seq uint64, v []byte)) error {
	return l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			fn(seqOf(k), v)
			return nil
		})
	})
}

// Each way of tampering with an export is caught at the right record.
func TestVerifyCatchesTamperedExports(t *testing.T) {
	l := openLog12(t)
	orig := exportOf(t, l, Filter{})
	forger := newKey(t)
	tests := []struct {
		name   string
		tamper func(lines []string) []string
		pub    ed25519.PublicKey
		seq    uint64
		reason string
	}{
		{name: "changed byte", tamper: func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], "kyc-onboarding", "kyc-onboardinG", 1)
			return ls
		}, seq: 3, reason: "hash mismatch"},
		{name: "deleted record", tamper: func(ls []string) []string { return slices.Delete(ls, 4, 5) }, seq: 4, reason: "gap: record 4 is missing"},
		{name: "swapped records", tamper: func(ls []string) []string {
			ls[8], ls[9] = ls[9], ls[8]
			return ls
		}, seq: 8, reason: "reordered: record 9 comes before record 8"},
		{name: "far swap", tamper: func(ls []string) []string {
			ls[2], ls[10] = ls[10], ls[2]
			return ls
		}, seq: 2, reason: "reordered"},
		{name: "repeated record", tamper: func(ls []string) []string { return slices.Insert(ls, 5, ls[4]) }, seq: 5, reason: "repeated"},
		{name: "cut after a checkpoint", tamper: func(ls []string) []string { return ls[:13] }, seq: 13,
			reason: "truncated: the log ends at record 12, but the export's signed head is record 14"},
		{name: "cut before a checkpoint", tamper: func(ls []string) []string { return ls[:12] }, seq: 12, reason: "truncated"},
		{name: "header only", tamper: func(ls []string) []string { return ls[:1] }, seq: 1, reason: "truncated"},
		{name: "rewritten and re-hashed", tamper: func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], "kyc-onboarding", "aml-screening", 1)
			rechainLines(ls, 3)
			return ls
		}, seq: 6, reason: "bad checkpoint signature"},
		{name: "forged checkpoint signature", tamper: func(ls []string) []string {
			r := lenient([]byte(ls[12]))
			r.Detail[DetailSignature] = flipHex(r.Detail[DetailSignature])
			ls[12] = string(recordLine(nil, &r))
			rechainLines(ls, 12)
			return ls
		}, seq: 12, reason: "bad checkpoint signature"},
		{name: "re-hashed to the end", tamper: func(ls []string) []string {
			// Without the key the signed head cannot follow.
			ls[13] = strings.Replace(ls[13], "kyc-onboarding", "aml-screening", 1)
			rechainLines(ls, 13)
			return ls
		}, seq: 14, reason: "differs from the export's signed head"},
		{name: "record appended", tamper: func(ls []string) []string {
			ls = append(ls, ls[14])
			r := lenient([]byte(ls[14]))
			r.Seq = 15
			ls[15] = string(recordLine(nil, &r))
			rechainLines(ls, 15)
			return ls
		}, seq: 15, reason: "after the export's signed head"},
		{name: "header changed", tamper: func(ls []string) []string {
			ls[0] = strings.Replace(ls[0], `"node":"node-1"`, `"node":"node-2"`, 1)
			return ls
		}, seq: 0, reason: "header signature does not verify"},
		{name: "header not canonical", tamper: func(ls []string) []string {
			ls[0] = strings.Replace(ls[0], `"node":`, `"Node":`, 1)
			return ls
		}, seq: 0, reason: "canonical"},
		{name: "header missing", tamper: func(ls []string) []string { return ls[1:] }, seq: 0, reason: "format"},
		{name: "verified with another key", pub: forger.Public().(ed25519.PublicKey), seq: 0, reason: "header signature does not verify"},
		{name: "re-signed with another key", tamper: func(ls []string) []string {
			h, _ := parseHeader([]byte(ls[0]))
			h.PublicKey = hex.EncodeToString(forger.Public().(ed25519.PublicKey))
			h.Signature = hex.EncodeToString(ed25519.Sign(forger, h.signedMessage()))
			ls[0] = string(h.encode(true))
			return ls
		}, seq: 0, reason: "the export names another key"},
		{name: "CRLF", tamper: func(ls []string) []string {
			ls[7] += "\r"
			return ls
		}, seq: 7, reason: "canonical"},
		{name: "escaped differently", tamper: func(ls []string) []string {
			ls[2] = strings.Replace(ls[2], `"GET"`, `"\u0047ET"`, 1)
			return ls
		}, seq: 2, reason: "canonical"},
		{name: "elided in a complete export", tamper: func(ls []string) []string {
			r := lenient([]byte(ls[5]))
			ls[5] = string(stubLine(nil, r.Seq, r.PrevHash, r.Hash))
			return ls
		}, seq: 5, reason: "elided record in an export whose header says it is complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.tamper
			got := slices.Clone(orig)
			if lines != nil {
				got = tt.tamper(got)
			}
			pub := l.PublicKey()
			if tt.pub != nil {
				pub = tt.pub
			}
			_, err := Verify(strings.NewReader(joinLines(got)), pub)
			wantVerifyError(t, err, tt.seq, tt.reason)
		})
	}
	t.Run("no final newline", func(t *testing.T) {
		_, err := Verify(strings.NewReader(strings.TrimSuffix(joinLines(orig), "\n")), l.PublicKey())
		wantVerifyError(t, err, 14, "no newline")
	})
	t.Run("empty", func(t *testing.T) {
		_, err := Verify(strings.NewReader(""), l.PublicKey())
		wantVerifyError(t, err, 0, "no export header")
	})
}

func TestFilteredExport(t *testing.T) {
	l := openLog12(t)
	lines := exportOf(t, l, Filter{Vendor: "kb"})
	var kept, stubs []uint64
	for _, line := range lines[1:] {
		r := lenient([]byte(line))
		switch {
		case r.Kind == KindElided:
			stubs = append(stubs, r.Seq)
			if strings.Contains(line, "airbank") || strings.Contains(line, "time") {
				t.Errorf("stub carries more than the chain: %s", line)
			}
		case r.Kind != KindCheckpoint:
			if r.Vendor != "kb" {
				t.Errorf("record %d of vendor %s kept", r.Seq, r.Vendor)
			}
			kept = append(kept, r.Seq)
		}
	}
	// sampleRecord(i) calls kb for i divisible by 3: i = 0, 3, 6, 9 are records 1, 4, 8, 11.
	if !slices.Equal(kept, []uint64{1, 4, 8, 11}) || len(stubs) != 8 {
		t.Fatalf("kept %v, stubs %v", kept, stubs)
	}
	rep, err := Verify(strings.NewReader(joinLines(lines)), l.PublicKey(), RequireVouched())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Partial || rep.Records != 4 || rep.Elided != 8 || rep.Checkpoints != 2 || rep.Head.Seq != 14 {
		t.Errorf("report %+v", rep)
	}

	tamper := func(seq int, f func(string) string) string {
		ls := slices.Clone(lines)
		ls[seq] = f(ls[seq])
		return joinLines(ls)
	}
	_, err = Verify(strings.NewReader(tamper(8, func(s string) string { return strings.Replace(s, `"kb"`, `"kc"`, 1) })), l.PublicKey())
	wantVerifyError(t, err, 8, "hash mismatch")
	_, err = Verify(strings.NewReader(tamper(9, func(s string) string {
		r := lenient([]byte(s))
		return string(stubLine(nil, r.Seq, r.PrevHash, flipHex(r.Hash)))
	})), l.PublicKey())
	wantVerifyError(t, err, 10, "chain broken")
	_, err = Verify(strings.NewReader(tamper(0, func(s string) string {
		return strings.Replace(s, `"partial":true`, `"partial":false`, 1)
	})), l.PublicKey())
	wantVerifyError(t, err, 0, "header signature")
}

func TestExportFilterFields(t *testing.T) {
	l := openLog12(t)
	all := exportOf(t, l, Filter{})
	t3 := lenient([]byte(all[3])).Time
	t9 := lenient([]byte(all[9])).Time
	for name, tt := range map[string]struct {
		f    Filter
		kept []uint64
	}{
		"time":    {Filter{From: t3, To: t9}, []uint64{3, 4, 5, 7, 8}},
		"app":     {Filter{App: "loans"}, []uint64{1, 5, 10}},
		"consent": {Filter{Consent: "consent-2", Vendor: "airbank"}, []uint64{3}},
		"purpose": {Filter{Purpose: "age-verification"}, nil},
	} {
		lines := exportOf(t, l, tt.f)
		var kept []uint64
		for _, line := range lines[1:] {
			if r := lenient([]byte(line)); r.Kind != KindElided && r.Kind != KindCheckpoint {
				kept = append(kept, r.Seq)
			}
		}
		if !slices.Equal(kept, tt.kept) {
			t.Errorf("%s: kept %v, want %v", name, kept, tt.kept)
		}
		if rep, err := Verify(strings.NewReader(joinLines(lines)), l.PublicKey()); err != nil || !rep.Partial {
			t.Errorf("%s: %+v, %v", name, rep, err)
		}
	}
}

func TestExportEmptyLog(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	lines := exportOf(t, l, Filter{})
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	rep, err := Verify(strings.NewReader(joinLines(lines)), l.PublicKey(), RequireVouched())
	if err != nil || rep.Records != 0 || rep.Head.Seq != 0 {
		t.Errorf("report %+v, err %v", rep, err)
	}
}

// An export holds the head of when it began: records appended meanwhile are left out,
// and reading it in chunks never mixes two states of the log.
func TestExportDuringAppends(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	appendConcurrently(t, l, 32, 100) // more than one export chunk
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 500 {
			if _, err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var b bytes.Buffer
	if err := l.Export(context.Background(), &b, Filter{}); err != nil {
		t.Fatal(err)
	}
	<-done
	rep, err := Verify(&b, l.PublicKey(), RequireVouched())
	if err != nil || rep.Records < 3200 {
		t.Errorf("report %+v, err %v", rep, err)
	}
}

func TestExportFile(t *testing.T) {
	path, pub := closedLog(t, 12, 5)
	var b bytes.Buffer
	if err := ExportFile(context.Background(), path, &b, Filter{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	h, verr := parseHeader([]byte(lines[0]))
	if verr != nil {
		t.Fatal(verr)
	}
	// No key offline: the header is unsigned, its head is the final checkpoint's.
	if h.Signature != "" || h.Head == nil || h.Head.Seq != 14 || len(lines) != 16 {
		t.Fatalf("header %+v, %d lines", h, len(lines))
	}
	rep, err := Verify(strings.NewReader(b.String()), pub, RequireVouched())
	if err != nil || rep.Records != 12 || rep.Checkpoints != 3 || rep.Unvouched != 0 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	_, err = Verify(strings.NewReader(joinLines(lines[:13])), pub)
	wantVerifyError(t, err, 13, "truncated")

	var f bytes.Buffer
	if err := ExportFile(context.Background(), path, &f, Filter{App: "loans"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(&f, pub, RequireVouched()); err != nil || !rep.Partial || rep.Records != 3 {
		t.Errorf("filtered: %+v, %v", rep, err)
	}
}

// A file left without its final checkpoint exports fine; the export says which
// records nothing signed covers.
func TestExportFileOfACrashedLog(t *testing.T) {
	o := testOptions(t)
	o.CheckpointEvery = 5
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 8)
	abandon(l)
	var b bytes.Buffer
	if err := ExportFile(context.Background(), path, &b, Filter{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(b.Bytes()), l.PublicKey())
	if err != nil || rep.Unvouched != 3 || rep.FirstUnvouched != 7 {
		t.Errorf("report %+v, err %v", rep, err)
	}
	_, err = Verify(bytes.NewReader(b.Bytes()), l.PublicKey(), RequireVouched())
	wantVerifyError(t, err, 7, "not covered")
}

// Offline, without the key, an export of a file that never got a checkpoint has
// nothing signed in it, and Verify says so rather than vouch for it.
func TestExportFileWithoutACheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3)
	abandon(l)
	var b bytes.Buffer
	if err := ExportFile(context.Background(), path, &b, Filter{}); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(&b, l.PublicKey())
	wantVerifyError(t, err, 0, "nothing in the export is signed")
	if rep, err := VerifyDB(path, l.PublicKey()); err != nil || rep.Unvouched != 3 {
		t.Errorf("VerifyDB: %+v, %v", rep, err)
	}
}

func TestSnapshot(t *testing.T) {
	l := openLog12(t)
	snap := filepath.Join(t.TempDir(), "snapshot.db")
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Snapshot(f)
	f.Close()
	if err != nil || n == 0 {
		t.Fatalf("Snapshot: %d, %v", n, err)
	}
	// The snapshot is a log file of its own, readable while the log runs on.
	appendN(t, l, 1)
	rep, err := VerifyDB(snap, l.PublicKey())
	if err != nil || rep.Head.Seq != 14 || rep.Unvouched != 2 {
		t.Errorf("snapshot report %+v, err %v", rep, err)
	}
	var b bytes.Buffer
	if err := ExportFile(context.Background(), snap, &b, Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(&b, l.PublicKey()); err != nil {
		t.Error(err)
	}
}

// Cancelling an export stops it between chunks.
func TestExportCancelled(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	appendN(t, l, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Export(ctx, &bytes.Buffer{}, Filter{}); err == nil {
		t.Error("cancelled export succeeded")
	}
}
