package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// segmentedLog writes n records (by 4 writers) to a log that rotates every 64 KiB,
// closes it and returns its path, public key and options.
func segmentedLog(t *testing.T, n int) (string, PublicKey, Options) {
	t.Helper()
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	o.CheckpointEvery = 50
	l, path := MustOpen(t, o)
	appendConcurrently(t, l, 4, n/4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, l.PublicKey(), o
}

// A log that reaches its size rotates into sealed segments: each ends with a
// checkpoint, verifies alone from the checkpoint it starts at, and together with
// the active file they are one chain holding every record once.
func TestRotationSealsSegments(t *testing.T) {
	const n = 2000
	path, pub, _ := segmentedLog(t, n)
	segs, err := Segments(SegmentDir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments from %d records of about 1 KB in 64 KiB segments", len(segs), n)
	}
	for i, s := range segs {
		rep, err := VerifyDB(s.Path, pub, RequireVouched())
		if err != nil {
			t.Fatalf("segment %s alone: %v", s.Name(), err)
		}
		if rep.Start != s.First || rep.Head.Seq != s.Last || i == 0 && s.First != 1 {
			t.Errorf("segment %s holds records %d to %d", s.Name(), rep.Start, rep.Head.Seq)
		}
		if i > 0 && s.First != segs[i-1].Last {
			t.Errorf("segment %s does not start at the checkpoint %d that sealed the one before", s.Name(), segs[i-1].Last)
		}
	}
	files, err := Files(path)
	if err != nil || len(files) != len(segs)+1 || files[len(files)-1] != path {
		t.Fatalf("Files: %v, %v", files, err)
	}
	rep, err := VerifyFiles(files, pub, RequireVouched())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != n || rep.Start != 1 {
		t.Errorf("the chain across segments: %d records from %d, want %d from 1", rep.Records, rep.Start, n)
	}
	if fast, err := VerifyFiles(files, pub, RequireVouched(), ByBytes()); err != nil || fast.Records != n || fast.Head != rep.Head || fast.Checkpoints != rep.Checkpoints {
		t.Errorf("by bytes: %+v, %v; in full: %+v", fast, err, rep)
	}
	// The export of all of it verifies and carries every record once.
	var buf bytes.Buffer
	if err := ExportFiles(context.Background(), files, &buf, Filter{}); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(bytes.NewReader(buf.Bytes()), pub); err != nil || rep.Records != n {
		t.Errorf("export across segments: %d records, %v", rep.Records, err)
	}
	// A subject's records are found in every segment.
	found := 0
	if err := Search(context.Background(), path, HMAC(testHMACKey, "user-3"), func(Record) error { found++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := n / 11; found < want {
		t.Errorf("search across segments found %d records of user-3, want about %d", found, want)
	}
}

// The running log reads sealed segments for a stream that is behind, and its export
// covers every segment on the node; the chain goes on after a restart.
func TestLiveLogReadsItsSegments(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	l, path := MustOpen(t, o)
	appendN(t, l, 600)
	if segs, _ := Segments(SegmentDir(path)); len(segs) == 0 {
		t.Fatal("no segment sealed")
	}
	var seq uint64
	for {
		lines, err := l.Lines(seq, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 {
			break
		}
		for _, ln := range lines {
			if ln.Seq != seq+1 {
				t.Fatalf("Lines after %d gave record %d", seq, ln.Seq)
			}
			seq = ln.Seq
		}
	}
	if seq != l.Head().Seq {
		t.Errorf("Lines reached record %d, the head is %d", seq, l.Head().Seq)
	}
	exp := exportOf(t, l, Filter{})
	if rep, err := Verify(strings.NewReader(joinLines(exp)), l.PublicKey()); err != nil || rep.Records != 600 || rep.Start != 1 {
		t.Errorf("live export: %+v, %v", rep, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpenPath(t, path, o)
	appendN(t, l, 10)
	l.Close()
	files, _ := Files(path)
	if rep, err := VerifyFiles(files, l.PublicKey(), RequireVouched()); err != nil || rep.Records != 610 {
		t.Errorf("after a restart: %d records, %v", rep.Records, err)
	}
}

// A log rotates by age too, on the writer's clock, even with no record coming.
func TestRotationByAge(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now = clk.Now
	o.SegmentAge = time.Hour
	o.CheckpointInterval = 20 * time.Millisecond
	l, path := MustOpen(t, o)
	appendN(t, l, 5)
	clk.mu.Lock()
	clk.t = clk.t.Add(2 * time.Hour)
	clk.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		segs, _ := Segments(SegmentDir(path))
		if len(segs) == 1 && segs[0].First == 1 && segs[0].Last == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment of records 1 to 6 after the age passed: %+v", segs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h := l.Head(); h.Seq != 6 {
		t.Errorf("the head after sealing is %d, want the sealing checkpoint 6", h.Seq)
	}
}

// Verifying a log's files names the segment that is missing or was altered; a log
// whose oldest segments are gone verifies from the signed checkpoint it starts at,
// unless an anchor says the history before it should be there.
func TestVerifyFilesNamesTheBadSegment(t *testing.T) {
	path, pub, _ := segmentedLog(t, 1200)
	segs, _ := Segments(SegmentDir(path))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	all, _ := Files(path)
	full, err := VerifyFiles(all, pub)
	if err != nil {
		t.Fatal(err)
	}

	without := func(i int) []string { return append(append([]string(nil), all[:i]...), all[i+1:]...) }
	_, err = VerifyFiles(without(1), pub)
	var verr *VerifyError
	if !errors.As(err, &verr) || verr.File != all[2] || !strings.Contains(verr.Reason, "missing segment") || verr.Seq != segs[1].First+1 {
		t.Errorf("a middle segment left out: %v", err)
	}

	// History pruned: the chain starts at the second segment's checkpoint.
	rep, err := VerifyFiles(without(0), pub)
	if err != nil || rep.Start != segs[1].First || rep.Head != full.Head {
		t.Errorf("oldest segment pruned: start %d head %+v, %v", rep.Start, rep.Head, err)
	}
	if _, err := VerifyFiles(without(0), pub, Anchor(Head{Seq: 3, Hash: "00"})); err == nil || !strings.Contains(err.Error(), "history pruned past it") {
		t.Errorf("an anchor in the pruned history: %v", err)
	}

	// A record of the second segment rewritten, chain and all, up to its end: only
	// the checkpoint's signature and the next segment can tell.
	editRecords(t, segs[1].Path, func(b *bolt.Bucket) error {
		k := seqKey(segs[1].First + 2)
		v := bytes.Replace(b.Get(k), []byte(`"vendor":"airbank"`), []byte(`"vendor":"airbanx"`), 1)
		v = bytes.Replace(v, []byte(`"vendor":"kb"`), []byte(`"vendor":"kx"`), 1)
		if err := b.Put(k, v); err != nil {
			return err
		}
		return rechain(b, segs[1].First+2)
	})
	_, err = VerifyFiles(all, pub)
	if !errors.As(err, &verr) || verr.File != segs[1].Path {
		t.Errorf("an altered segment: %v", err)
	}
}

// A rotation cut short by a crash is finished or undone at Open; a missing active
// file beside sealed segments is refused rather than started again.
func TestRotationRecovery(t *testing.T) {
	path, pub, o := segmentedLog(t, 400)
	reopen := func() error {
		l, err := Open(path, o)
		if err == nil {
			appendN(t, l, 3)
			err = l.Close()
		}
		return err
	}
	t.Run("next prepared, active still in place", func(t *testing.T) {
		if err := os.WriteFile(path+nextSuffix, []byte("half written"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := reopen(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + nextSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the prepared file is still there: %v", err)
		}
	})
	t.Run("active moved, next not yet in place", func(t *testing.T) {
		if err := os.Rename(path, path+nextSuffix); err != nil {
			t.Fatal(err)
		}
		if err := reopen(); err != nil {
			t.Fatal(err)
		}
	})
	files, _ := Files(path)
	if rep, err := VerifyFiles(files, pub, RequireVouched()); err != nil || rep.Records != 406 {
		t.Errorf("after recovery: %d records, %v", rep.Records, err)
	}
	t.Run("active missing", func(t *testing.T) {
		if err := os.Rename(path, path+".kept"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(path+".kept", path)
		if err := reopen(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "restore the file") {
			t.Errorf("Open without the active file: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("Open created a new active file beside the sealed segments")
		}
	})
}

// ParseSegmentName reads only the names segmentName writes.
func TestParseSegmentName(t *testing.T) {
	for name, ok := range map[string]bool{
		segmentName(1, 1001):                           true,
		segmentName(7, 3):                              false,
		"00000000000000000001-00000000000000001001":    false,
		"1-1001.db":                                    false,
		"00000000000000000001-0000000000000000100x.db": false,
		filepath.Base(segmentName(5, 9)) + ".tmp":      false,
	} {
		if _, _, got := ParseSegmentName(name); got != ok {
			t.Errorf("ParseSegmentName(%q) = %v", name, got)
		}
	}
}

// Cutting a log's front to one of its ordinary checkpoints is tampering, not
// pruning: a chain may start only at a checkpoint signed as sealing a segment, and
// a segment must hold the records its name says.
func TestCutToAnOrdinaryCheckpointFails(t *testing.T) {
	t.Run("a log that never rotated", func(t *testing.T) {
		path, pub := closedLog(t, 120, 50) // checkpoints at 51 and 102
		editRecords(t, path, func(b *bolt.Bucket) error {
			for s := uint64(1); s < 51; s++ {
				if err := b.Delete(seqKey(s)); err != nil {
					return err
				}
			}
			return nil
		})
		wantVerifyErrorAt(t, path, pub, 1, "gap")
	})
	t.Run("a segment cut at its front", func(t *testing.T) {
		o := testOptions(t)
		o.SegmentBytes = 64 << 10
		o.CheckpointEvery = 10
		l, path := MustOpen(t, o)
		appendN(t, l, 300)
		l.Close()
		segs, _ := Segments(SegmentDir(path))
		editRecords(t, segs[0].Path, func(b *bolt.Bucket) error {
			for s := uint64(1); s < 11; s++ { // record 11 is a checkpoint
				if err := b.Delete(seqKey(s)); err != nil {
					return err
				}
			}
			return nil
		})
		files, _ := Files(path)
		_, err := VerifyFiles(files, l.PublicKey())
		var verr *VerifyError
		if !errors.As(err, &verr) || verr.File != segs[0].Path || !strings.Contains(verr.Reason, "name says records 1 to") {
			t.Errorf("the first segment cut to checkpoint 11: %v", err)
		}
		renamed := filepath.Join(t.TempDir(), segmentName(11, segs[0].Last))
		if err := os.Rename(segs[0].Path, renamed); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyDB(renamed, l.PublicKey()); err == nil {
			t.Error("a segment cut to an ordinary checkpoint, and renamed to match, verified")
		}
	})
	t.Run("an offline export cut at its front", func(t *testing.T) {
		path, pub := closedLog(t, 120, 50)
		var buf bytes.Buffer
		if err := ExportFiles(context.Background(), []string{path}, &buf, Filter{}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		h, verr := parseHeader([]byte(lines[0]))
		if verr != nil {
			t.Fatal(verr)
		}
		h.Start = 51 // the header of ExportFile is not signed
		cut := append([]string{string(h.encode(true))}, lines[51:]...)
		if _, err := Verify(strings.NewReader(joinLines(cut)), pub); err == nil {
			t.Error("an offline export cut to checkpoint 51 verified")
		}
	})
}

func wantVerifyErrorAt(t *testing.T, path string, pub PublicKey, seq uint64, reason string) {
	t.Helper()
	_, err := VerifyDB(path, pub, RequireVouched())
	var verr *VerifyError
	if !errors.As(err, &verr) || verr.Seq != seq || !strings.Contains(verr.Reason, reason) {
		t.Errorf("VerifyDB: %v, want record %d: %s", err, seq, reason)
	}
}

// Beside sealed segments, a missing or empty active file is an error for the
// verifier as for the gateway: never a shorter log, never a new chain.
func TestActiveFileMissingOrEmptyBesideSegments(t *testing.T) {
	path, pub, o := segmentedLog(t, 400)
	if err := os.Rename(path, path+".kept"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(path+".kept", path)
	if files, err := Files(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Files without the active file: %v, %v", files, err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(path, o); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of an empty file beside sealed segments: %v", err)
		if err == nil {
			l.Close()
		}
	}
	// A rotation that failed and left an empty file where the active one was, with
	// the prepared next file beside it: the next file is the continuation.
	next, err := os.ReadFile(path + ".kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+nextSuffix, next, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open with an empty active file and the prepared next one: %v", err)
	}
	appendN(t, l, 2)
	l.Close()
	files, _ := Files(path)
	if rep, err := VerifyFiles(files, pub, RequireVouched()); err != nil || rep.Start != 1 {
		t.Errorf("after recovery: %+v, %v", rep, err)
	}
	os.Remove(path + ".kept")
}

// A rotation whose file vanished does not create an empty log in its place.
func TestReopenDoesNotCreateTheFile(t *testing.T) {
	l, path := MustOpen(t, testOptions(t))
	appendN(t, l, 5)
	l.dbMu.Lock()
	l.db.Close()
	if err := os.Rename(path, path+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	err := l.reopen(nil)
	l.dbMu.Unlock()
	if _, serr := os.Stat(path); err == nil || serr == nil {
		t.Errorf("reopen of a missing file: %v; the file exists: %v", err, serr == nil)
	}
	if _, err := l.Append(context.Background(), sampleRecord(1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append without a file: %v", err)
	}
	if err := os.Rename(path+".elsewhere", path); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), sampleRecord(2)); err != nil {
		t.Errorf("Append once the file is back: %v", err)
	}
}

// Streams and exports read a log that rotates under them: every record once, in
// order, and every export verifies.
func TestReadersDuringRotation(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	o.CheckpointEvery = 20
	l, _ := MustOpen(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { appendConcurrently(t, l, 4, 150); cancel() })
	wg.Go(func() {
		var seq uint64
		for {
			lines, err := l.Lines(seq, 37)
			if err != nil {
				t.Errorf("Lines(%d): %v", seq, err)
				return
			}
			for _, ln := range lines {
				if ln.Seq != seq+1 {
					t.Errorf("Lines after %d gave %d", seq, ln.Seq)
					return
				}
				seq = ln.Seq
			}
			if len(lines) == 0 {
				if ctx.Err() != nil && seq == l.Head().Seq {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			var b bytes.Buffer
			if err := l.Export(context.Background(), &b, Filter{}); err != nil {
				t.Errorf("Export: %v", err)
				return
			}
			if _, err := Verify(&b, l.PublicKey()); err != nil {
				t.Errorf("an export during rotations: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if segs, _ := Segments(l.segDir); len(segs) < 3 {
		t.Errorf("only %d segments sealed: the test did not rotate under its readers", len(segs))
	}
}

// While a reader holds the file (a snapshot), a rotation waits, and the commits
// meanwhile do not each sign a sealing checkpoint in vain.
func TestRotationWaitsForAReaderWithoutSealing(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 1 // always due
	l, path := MustOpen(t, o)
	appendN(t, l, 1)
	l.dbMu.RLock()
	before := l.Stats().Checkpoints
	appendN(t, l, 20)
	during := l.Stats().Checkpoints - before
	l.dbMu.RUnlock()
	if during > 1 {
		t.Errorf("%d checkpoints written while a reader held the file, over 20 commits", during)
	}
	appendN(t, l, 1)
	// The writer rotates after it has answered the commit's callers.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if segs, _ := Segments(SegmentDir(path)); len(segs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no segment sealed once the reader let go")
		}
	}
}
