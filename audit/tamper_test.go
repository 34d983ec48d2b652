package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Each way of tampering with a closed file is caught at the right record. The file
// (closedLog(t, 12, 5)) is: 1-5 records, 6 checkpoint, 7-11 records, 12 checkpoint,
// 13-14 records, 15 the final checkpoint.
func TestVerifyDBCatchesTampering(t *testing.T) {
	replaceIn := func(seq uint64, old, new string) func(*bolt.Bucket) error {
		return func(b *bolt.Bucket) error {
			v := string(b.Get(seqKey(seq)))
			if !strings.Contains(v, old) {
				t.Fatalf("record %d has no %q: %s", seq, old, v)
			}
			return b.Put(seqKey(seq), []byte(strings.Replace(v, old, new, 1)))
		}
	}
	deleteRange := func(from, to uint64) func(*bolt.Bucket) error {
		return func(b *bolt.Bucket) error {
			for seq := from; seq <= to; seq++ {
				if err := b.Delete(seqKey(seq)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var otherKey = newKey(t)
	tests := []struct {
		name   string
		tamper func(*bolt.Bucket) error
		opts   func(orig Report) []VerifyOption
		pub    ed25519.PublicKey // nil: the log's own
		seq    uint64
		reason string
	}{
		{name: "changed byte", tamper: replaceIn(3, "kyc-onboarding", "kyc-onboardinG"), seq: 3, reason: "hash mismatch"},
		{name: "changed number", tamper: replaceIn(4, `"status":200`, `"status":500`), seq: 4, reason: "hash mismatch"},
		{name: "changed hash", tamper: func(b *bolt.Bucket) error {
			r := lenient(b.Get(seqKey(9)))
			return replaceIn(9, r.Hash, flipHex(r.Hash))(b)
		}, seq: 9, reason: "hash mismatch"},
		{name: "changed seq", tamper: replaceIn(5, `{"seq":5,`, `{"seq":7,`), seq: 5, reason: "hash mismatch"},
		{name: "not canonical", tamper: replaceIn(2, `"vendor":`, `"Vendor":`), seq: 2, reason: "canonical"},
		{name: "not JSON", tamper: replaceIn(2, `{"seq"`, `["seq"`), seq: 2, reason: "not a JSON record"},
		{name: "deleted record", tamper: deleteRange(4, 4), seq: 4, reason: "gap"},
		{name: "deleted first record", tamper: deleteRange(1, 1), seq: 1, reason: "gap"},
		{name: "swapped records", tamper: func(b *bolt.Bucket) error {
			v8, v9 := bytes.Clone(b.Get(seqKey(8))), bytes.Clone(b.Get(seqKey(9)))
			b.Put(seqKey(8), v9)
			return b.Put(seqKey(9), v8)
		}, seq: 8, reason: "reordered"},
		{name: "rewritten and re-hashed", tamper: func(b *bolt.Bucket) error {
			replaceIn(3, "kyc-onboarding", "aml-screening")(b)
			return rechain(b, 3)
		}, seq: 6, reason: "bad checkpoint signature"},
		{name: "forged checkpoint signature", tamper: func(b *bolt.Bucket) error {
			r := lenient(b.Get(seqKey(6)))
			replaceIn(6, r.Detail[DetailSignature], flipHex(r.Detail[DetailSignature]))(b)
			return rechain(b, 6)
		}, seq: 6, reason: "bad checkpoint signature"},
		{name: "checkpoint signature removed", tamper: func(b *bolt.Bucket) error {
			r := lenient(b.Get(seqKey(12)))
			delete(r.Detail, DetailSignature)
			b.Put(seqKey(12), recordLine(nil, &r))
			return rechain(b, 12)
		}, seq: 12, reason: "checkpoint without a signature"},
		{name: "checkpoint moved", tamper: func(b *bolt.Bucket) error {
			// The checkpoint at 12 put at 11 (and 11 at 12), both re-numbered and
			// re-hashed: it no longer covers the record before it.
			r11, r12 := lenient(b.Get(seqKey(11))), lenient(b.Get(seqKey(12)))
			r11.Seq, r12.Seq = 12, 11
			b.Put(seqKey(11), recordLine(nil, &r12))
			b.Put(seqKey(12), recordLine(nil, &r11))
			return rechain(b, 11)
		}, seq: 11, reason: "checkpoint covers record"},
		{name: "verified with another key", pub: otherKey.Public().(ed25519.PublicKey), seq: 6, reason: "bad checkpoint signature"},
		{name: "log id changed", tamper: func(b *bolt.Bucket) error {
			return b.Tx().Bucket(bucketMeta).Put(metaLogID, []byte("00000000-0000-4000-8000-000000000000"))
		}, seq: 1, reason: "does not chain to log id"},
		{name: "unsigned record appended", tamper: func(b *bolt.Bucket) error {
			last := lenient(b.Get(seqKey(15)))
			r := sampleRecord(99)
			r.Seq, r.Node, r.Time, r.PrevHash = 16, "node-1", last.Time, last.Hash
			b.Put(seqKey(16), recordLine(nil, &r))
			return rechain(b, 16)
		}, opts: vouched, seq: 16, reason: "not covered by a signed checkpoint"},
		{name: "cut before the final checkpoint", tamper: deleteRange(14, 15), opts: vouched, seq: 13, reason: "records 13 to 13 are not covered"},
		{name: "cut back to a checkpoint", tamper: deleteRange(13, 15), opts: func(orig Report) []VerifyOption {
			return []VerifyOption{Anchor(orig.Head)}
		}, seq: 13, reason: "truncated: the log ends at record 12, but the anchor is record 15"},
		{name: "anchor of another chain", opts: func(orig Report) []VerifyOption {
			return []VerifyOption{Anchor(Head{Seq: 10, Hash: orig.Head.Hash})}
		}, seq: 10, reason: "differs from the anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, pub := closedLog(t, 12, 5)
			orig, err := VerifyDB(path, pub, RequireVouched())
			if err != nil || orig.Head.Seq != 15 || orig.Checkpoints != 3 {
				t.Fatalf("before tampering: %+v, %v", orig, err)
			}
			if tt.tamper != nil {
				editRecords(t, path, tt.tamper)
			}
			if tt.pub != nil {
				pub = tt.pub
			}
			var opts []VerifyOption
			if tt.opts != nil {
				opts = tt.opts(orig)
			}
			_, err = VerifyDB(path, pub, opts...)
			wantVerifyError(t, err, tt.seq, tt.reason)
			// The check by bytes fails at the same record, if not always for the
			// same stated reason (it does not decode what it need not).
			_, err = VerifyDB(path, pub, append(opts, ByBytes())...)
			var verr *VerifyError
			if !errors.As(err, &verr) || verr.Seq != tt.seq {
				t.Errorf("ByBytes: %v, want a failure at record %d", err, tt.seq)
			}
		})
	}
}

func vouched(Report) []VerifyOption { return []VerifyOption{RequireVouched()} }

// Without RequireVouched, records after the last checkpoint are counted, not failed:
// every live log's snapshot has them.
func TestVerifyDBReportsUnvouched(t *testing.T) {
	path, pub := closedLog(t, 12, 5)
	editRecords(t, path, func(b *bolt.Bucket) error { return b.Delete(seqKey(15)) })
	rep, err := VerifyDB(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unvouched != 2 || rep.FirstUnvouched != 13 || rep.Head.Seq != 14 {
		t.Errorf("report %+v, want records 13 and 14 unvouched", rep)
	}
}

// A forger who replaces the file's key with their own and re-signs every checkpoint is
// caught by the auditor's copy of the real key, and the message says the file names
// another one.
func TestVerifyDBCatchesAReplacedKey(t *testing.T) {
	path, pub := closedLog(t, 12, 5)
	forger := newKey(t)
	editRecords(t, path, func(b *bolt.Bucket) error {
		m := b.Tx().Bucket(bucketMeta)
		logID := string(m.Get(metaLogID))
		m.Put(metaPublicKey, []byte(hex.EncodeToString(forger.Public().(ed25519.PublicKey))))
		for seq := uint64(1); seq <= 15; seq++ {
			r := lenient(b.Get(seqKey(seq)))
			if r.Kind == KindCheckpoint {
				sig := ed25519.Sign(forger, headMessage(logID, seq-1, r.PrevHash, r.Time))
				r.Detail[DetailSignature] = hex.EncodeToString(sig)
				b.Put(seqKey(seq), recordLine(nil, &r))
				if err := rechain(b, seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if _, err := VerifyDB(path, forger.Public().(ed25519.PublicKey), RequireVouched()); err != nil {
		t.Fatalf("the forgery is consistent under the forger's key: %v", err)
	}
	_, err := VerifyDB(path, pub)
	wantVerifyError(t, err, 6, "the file names another key")
}

// flipHex changes the first hex digit of s to another hex digit.
func flipHex(s string) string {
	c := byte('0')
	if s[0] == '0' {
		c = '1'
	}
	return string(c) + s[1:]
}
