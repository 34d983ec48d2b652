package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// smallExports are a full and a filtered export of a short log with a checkpoint in it:
// 1-3 records, 4 checkpoint, 5-6 records.
func smallExports(t testing.TB) (full, partial []byte, pub ed25519.PublicKey) {
	t.Helper()
	o := testOptions(t)
	o.CheckpointEvery = 3
	o.MaxDelay = -1
	l, _ := MustOpen(t, o)
	appendN(t, l, 5)
	var f, p bytes.Buffer
	if err := l.Export(t.Context(), &f, Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Export(t.Context(), &p, Filter{Vendor: "kb"}); err != nil {
		t.Fatal(err)
	}
	return f.Bytes(), p.Bytes(), l.PublicKey().(ed25519.PublicKey)
}

// Verify never panics, and never calls an export valid once any byte of it changed.
func FuzzVerifyModifiedExport(f *testing.F) {
	full, partial, pub := smallExports(f)
	for _, e := range [][]byte{full, partial} {
		if _, err := Verify(bytes.NewReader(e), pub); err != nil {
			f.Fatalf("the unmodified export fails: %v", err)
		}
	}
	f.Add(false, uint32(0), byte('x'))
	f.Add(true, uint32(len(partial)-1), byte(' '))
	f.Add(false, uint32(300), byte('\n'))
	f.Add(true, uint32(500), byte('"'))
	f.Fuzz(func(t *testing.T, filtered bool, pos uint32, val byte) {
		e := full
		if filtered {
			e = partial
		}
		i := int(pos % uint32(len(e)))
		if e[i] == val {
			return
		}
		changed := bytes.Clone(e)
		changed[i] = val
		checkModifiedExport(t, changed, pub, i)
	})
}

func checkModifiedExport(t *testing.T, changed []byte, pub ed25519.PublicKey, at int) {
	t.Helper()
	rep, err := Verify(bytes.NewReader(changed), pub)
	if err == nil {
		t.Fatalf("byte %d changed to %q and the export still verifies: %+v\n%s", at, changed[at], rep, changed)
	}
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("byte %d changed: %v is not a verification failure", at, err)
	}
}

// Verify also never panics on arbitrary input, and never vouches for a record the log
// did not write: whatever passes with RequireVouched consists of genuine lines.
func FuzzVerifyArbitrary(f *testing.F) {
	full, partial, pub := smallExports(f)
	genuine := map[string]bool{}
	for _, e := range [][]byte{full, partial} {
		for _, line := range bytes.Split(e, []byte("\n"))[1:] {
			genuine[string(line)] = true
		}
	}
	f.Add(full[:len(full)/2])
	f.Add(partial[len(partial)/3:])
	f.Add([]byte("{}\n{}\n"))
	f.Add([]byte(`{"format":"consentgate-audit-export/1"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Verify(bytes.NewReader(data), pub)
		SearchExport(bytes.NewReader(data), HMAC(testHMACKey, "user-1"), func(Record) error { return nil })
		rep, err := Verify(bytes.NewReader(data), pub, RequireVouched())
		if err != nil {
			return
		}
		for _, line := range bytes.Split(data, []byte("\n"))[1:] {
			if !genuine[string(line)] {
				t.Fatalf("verifies (%+v) with a line the log never wrote: %s", rep, line)
			}
		}
	})
}

// The fuzz target's property over every byte of both exports, twice each: once with
// the low bit flipped (a digit, a letter, a quote), once with the case bit flipped.
// Under the race detector every fifth byte.
func TestVerifyCatchesEveryChangedByte(t *testing.T) {
	full, partial, pub := smallExports(t)
	stride := 1
	if raceEnabled {
		stride = 5
	}
	for _, e := range [][]byte{full, partial} {
		for i := 0; i < len(e); i += stride {
			for _, flip := range []byte{0x01, 0x20} {
				changed := bytes.Clone(e)
				changed[i] ^= flip
				checkModifiedExport(t, changed, pub, i)
			}
		}
	}
}
