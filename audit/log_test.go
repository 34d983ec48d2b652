package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consentgate/consentgate/internal/logsink"
	bolt "go.etcd.io/bbolt"
)

func TestAppendStoresTheChain(t *testing.T) {
	o := testOptions(t)
	l, path := MustOpen(t, o)
	if h := l.Head(); h.Seq != 0 || h.Hash != genesis(l.LogID()) {
		t.Errorf("empty log head = %+v, want 0 and the genesis hash", h)
	}
	got := appendN(t, l, 3)
	prev := genesis(l.LogID())
	for i, r := range got {
		if r.Seq != uint64(i+1) || r.Node != "node-1" || r.PrevHash != prev || !IsHMAC(r.Hash) {
			t.Errorf("record %d = seq %d node %q prev %q hash %q", i, r.Seq, r.Node, r.PrevHash, r.Hash)
		}
		if r.Time.Location() != time.UTC || r.Time.IsZero() {
			t.Errorf("record %d time %v, want UTC", i, r.Time)
		}
		prev = r.Hash
	}
	if h := l.Head(); h.Seq != 3 || h.Hash != got[2].Hash || !h.Time.Equal(got[2].Time) {
		t.Errorf("head = %+v, want record 3", h)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil {
		t.Fatal(err)
	}
	// Three records and the final checkpoint; request 0's intent and outcome pair up,
	// request 1's outcome has not come.
	if rep.Records != 3 || rep.Checkpoints != 1 || rep.Unvouched != 0 || rep.Head.Seq != 4 ||
		len(rep.Incomplete) != 1 || rep.Incomplete[0] != "req-1" || !rep.First.Equal(got[0].Time) || !rep.Last.Equal(got[2].Time) {
		t.Errorf("report = %+v", rep)
	}
}

func TestAppendReplacesWhatTheLogSets(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	r := sampleRecord(0)
	r.Seq, r.Node, r.Hash, r.PrevHash, r.Time = 99, "forged", "x", "y", time.Unix(0, 0)
	got, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || got.Node != "node-1" || got.PrevHash != genesis(l.LogID()) || got.Time.Year() != 2026 {
		t.Errorf("stored %+v", got)
	}
}

func TestAppendRefusesInvalidRecords(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	for name, r := range map[string]Record{
		"no kind":             {},
		"unknown kind":        {Kind: "debug"},
		"checkpoint":          {Kind: KindCheckpoint},
		"elided":              {Kind: KindElided},
		"raw subject":         {Kind: KindIntent, SubjectHMAC: "user-42"},
		"upper-case hmac":     {Kind: KindIntent, SubjectHMAC: strings.ToUpper(HMAC(testHMACKey, "x"))},
		"raw identifier":      {Kind: KindOutcome, Identifiers: []string{HMAC(testHMACKey, "x"), testBirthNumber}},
		"identifier too long": {Kind: KindOutcome, Identifiers: []string{HMAC(testHMACKey, "x") + "0"}},
	} {
		_, err := l.Append(context.Background(), r)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testBirthNumber) {
			t.Errorf("%s: the error quotes the raw value: %v", name, err)
		}
	}
	if s := l.Stats(); s.Records != 0 || s.Batches != 0 {
		t.Errorf("stats after refusals = %+v", s)
	}
}

// The canonical form survives odd strings: invalid UTF-8 is replaced before hashing, so
// the stored line decodes to exactly the record that was hashed.
func TestAppendOddStrings(t *testing.T) {
	l, path := MustOpen(t, testOptions(t))
	r := Record{Kind: KindSystem, Error: "bad \xff byte, \"quotes\", \\, <html>&, \u2028, tab\t, nul\x00, ĉ",
		Detail: map[string]string{"z": "1", "a": "\x1f", "\xfe": "key"}, Reasons: []string{"", "\xc3"}}
	got, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Error, "bad \uFFFD byte") || got.Detail["\uFFFD"] != "key" || got.Reasons[1] != "\uFFFD" {
		t.Errorf("stored %+v", got)
	}
	if r.Detail["\xfe"] != "key" {
		t.Errorf("Append changed the caller's map")
	}
	l.Close()
	if _, err := VerifyDB(path, l.PublicKey(), RequireVouched()); err != nil {
		t.Fatal(err)
	}
}

func TestAppendConcurrentGroupCommit(t *testing.T) {
	const writers, each = 64, 200
	l, path := MustOpen(t, testOptions(t))
	var wg sync.WaitGroup
	seqs := make([][]uint64, writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(context.Background(), sampleRecord(w*each+i))
				if err != nil {
					errs <- err
					return
				}
				seqs[w] = append(seqs[w], r.Seq)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every Append got its own sequence number, each one's in increasing order, and
	// together they are 1..n with the checkpoints in between.
	seen := map[uint64]bool{}
	for _, s := range seqs {
		for i, seq := range s {
			if seen[seq] || i > 0 && seq <= s[i-1] {
				t.Fatalf("sequence number %d twice or out of order", seq)
			}
			seen[seq] = true
		}
	}
	st := l.Stats()
	n := uint64(writers * each)
	if st.Records != n || st.Checkpoints != n/1000 || l.Head().Seq != n+n/1000 {
		t.Errorf("stats %+v, head %d, want %d records and %d checkpoints", st, l.Head().Seq, n, n/1000)
	}
	// Not one fsync per record: with 64 callers waiting, batches hold many records.
	if st.Batches*8 > n {
		t.Errorf("%d batches for %d records: group commit is not grouping", st.Batches, n)
	}
	t.Logf("%d records in %d batches (%.1f per batch)", n, st.Batches, float64(n)/float64(st.Batches))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != int(n) || rep.Checkpoints != int(n/1000)+1 {
		t.Errorf("report %+v", rep)
	}
	for seq := range seen {
		if seq > rep.Head.Seq {
			t.Errorf("returned seq %d is past the file's head %d", seq, rep.Head.Seq)
		}
	}
}

// The writer waits for callers already in Append, never for ones that may come: with a
// delay of an hour a lone caller still gets its answer at once.
func TestLoneAppendDoesNotWait(t *testing.T) {
	o := testOptions(t)
	o.MaxDelay = time.Hour
	l, _ := MustOpen(t, o)
	start := time.Now()
	appendN(t, l, 3)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("three appends took %s", d)
	}
	if st := l.Stats(); st.Batches != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestAppendAsync(t *testing.T) {
	o := testOptions(t)
	o.Mode = ModeAsync
	l, path := MustOpen(t, o)
	for i := range 100 {
		r, err := l.Append(context.Background(), sampleRecord(i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != 0 || r.Hash != "" {
			t.Fatalf("async Append returned seq %d hash %q: it cannot know them", r.Seq, r.Hash)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil || rep.Records != 100 {
		t.Errorf("report %+v, err %v", rep, err)
	}
}

// A cancelled request must not lose its record, nor return before knowing its fate.
func TestAppendIgnoresCancellation(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := l.Append(ctx, sampleRecord(0))
	if err != nil || r.Seq != 1 {
		t.Fatalf("Append with a cancelled context: %+v, %v", r, err)
	}
}

func TestCheckpoints(t *testing.T) {
	o := testOptions(t)
	o.CheckpointEvery = 5
	l, path := MustOpen(t, o)
	appendN(t, l, 12)
	if st := l.Stats(); st.Records != 12 || st.Checkpoints != 2 || l.Head().Seq != 14 {
		t.Fatalf("stats %+v head %d: want checkpoints at 6 and 12", st, l.Head().Seq)
	}
	// An explicit checkpoint covers 13 and 14; a second one has nothing to cover.
	for range 2 {
		if err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Checkpoints != 3 || l.Head().Seq != 15 {
		t.Fatalf("after Checkpoint: stats %+v head %d", st, l.Head().Seq)
	}
	l.Close() // nothing after the last checkpoint: Close adds none
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil || rep.Checkpoints != 3 || rep.Head.Seq != 15 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	var kinds []string
	if err := SearchAll(path, func(r Record) { kinds = append(kinds, r.Kind) }); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{6, 12, 15} {
		if kinds[seq-1] != KindCheckpoint {
			t.Errorf("record %d is %s, want a checkpoint", seq, kinds[seq-1])
		}
	}
}

// SearchAll calls fn with every record of a closed file, checkpoints included.
func SearchAll(path string, fn func(Record)) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
			fn(lenient(v))
			return nil
		})
	})
}

func TestCheckpointInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOptions(t)
		o.CheckpointInterval = 20 * time.Millisecond
		l, _ := MustOpen(t, o)
		appendN(t, l, 1)
		time.Sleep(o.CheckpointInterval - time.Millisecond)
		synctest.Wait()
		if n := l.Stats().Checkpoints; n != 0 {
			t.Fatalf("%d checkpoints before the interval", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := l.Stats().Checkpoints; n != 1 {
			t.Fatalf("%d checkpoints once the interval passed, want 1", n)
		}
		// An idle log is not checkpointed again and again.
		time.Sleep(10 * o.CheckpointInterval)
		synctest.Wait()
		if n := l.Stats().Checkpoints; n != 1 {
			t.Errorf("%d checkpoints of one record", n)
		}
	})
}

func TestReopenContinuesTheChain(t *testing.T) {
	o := testOptions(t)
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	id := l.LogID()
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpenPath(t, path, o)
	if l.LogID() != id || l.Head().Seq != 4 {
		t.Fatalf("reopened: id %s head %+v", l.LogID(), l.Head())
	}
	r, err := l.Append(context.Background(), sampleRecord(3))
	if err != nil || r.Seq != 5 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
	l.Close()
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil || rep.Records != 4 || rep.Checkpoints != 2 || len(rep.Incomplete) != 0 {
		t.Errorf("report %+v, err %v", rep, err)
	}
}

func TestOpenRefusesAnotherKey(t *testing.T) {
	path, _ := closedLog(t, 2, 1000)
	_, err := Open(path, testOptions(t))
	if !errors.Is(err, ErrWrongKey) {
		t.Errorf("err = %v, want ErrWrongKey", err)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	for name, o := range map[string]Options{
		"no key":         {},
		"short key":      {SigningKey: newKey(t)[:32]},
		"unknown mode":   {SigningKey: newKey(t), Mode: "fast"},
		"negative batch": {SigningKey: newKey(t), BatchSize: -1},
	} {
		if _, err := Open(path, o); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

// Open checks the records after the last checkpoint: the next checkpoint would vouch
// for them.
func TestOpenRefusesACorruptTail(t *testing.T) {
	o := testOptions(t)
	o.CheckpointEvery = 5
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 7)
	abandon(l) // records 7 and 8 follow the checkpoint at 6, and none follows them
	editRecords(t, path, func(b *bolt.Bucket) error {
		return b.Put(seqKey(8), []byte(strings.Replace(string(b.Get(seqKey(8))), "kyc-onboarding", "kyc-onboardinG", 1)))
	})
	_, err = Open(path, o)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	wantVerifyError(t, err, 8, "hash mismatch")
}

func TestOpenLocked(t *testing.T) {
	o := testOptions(t)
	_, path := MustOpen(t, o)
	start := time.Now()
	_, err := Open(path, o)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another consentgate") {
		t.Errorf("second Open: %v, want ErrLocked saying why", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open took %s", d)
	}
	// Readers are refused too while the writer holds it.
	if _, err := VerifyDB(path, o.SigningKey.Public().(ed25519.PublicKey)); !errors.Is(err, ErrLocked) {
		t.Errorf("VerifyDB of an open log: %v, want ErrLocked", err)
	}
	if err := ExportFile(context.Background(), path, &strings.Builder{}, Filter{}); !errors.Is(err, ErrLocked) {
		t.Errorf("ExportFile of an open log: %v, want ErrLocked", err)
	}
}

func TestClosedLogIsUnavailable(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	appendN(t, l, 1)
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Append(context.Background(), sampleRecord(1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after Close: %v", err)
	}
	for name, err := range map[string]error{
		"Healthy":    l.Healthy(),
		"Checkpoint": l.Checkpoint(context.Background()),
		"Export":     l.Export(context.Background(), &strings.Builder{}, Filter{}),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := l.Snapshot(&strings.Builder{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Snapshot after Close: %v", err)
	}
}

// Appends racing Close either get in (and are covered by the final checkpoint) or get
// ErrUnavailable; none panics and none is lost.
func TestAppendRacingClose(t *testing.T) {
	l, path := MustOpen(t, testOptions(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	// Close once some appends are in, while the rest are still coming.
	someIn := make(chan struct{})
	var once sync.Once
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				_, err := l.Append(context.Background(), sampleRecord(w*50+i))
				if errors.Is(err, ErrUnavailable) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				stored++
				mu.Unlock()
				if i == 2 {
					once.Do(func() { close(someIn) })
				}
			}
		})
	}
	<-someIn
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil || rep.Records != stored {
		t.Errorf("report %+v (%d stored), err %v", rep, stored, err)
	}
}

// When the file cannot be written every caller of the batch is refused, Healthy says
// so, and the logger hears it loudly.
func TestWriteFailureRefusesTheBatch(t *testing.T) {
	var sink logsink.Buffer
	o := testOptions(t)
	o.Logger = slog.New(slog.NewJSONHandler(&sink, nil))
	l, _ := MustOpen(t, o)
	appendN(t, l, 2)
	l.db.Close() // the disk goes away under the writer

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = l.Append(context.Background(), sampleRecord(i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("caller %d: %v, want ErrUnavailable", i, err)
		}
	}
	if err := l.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Healthy = %v", err)
	}
	if st := l.Stats(); st.Failed != 8 || st.Records != 2 {
		t.Errorf("stats %+v", st)
	}
	if h := l.Head(); h.Seq != 2 {
		t.Errorf("head moved to %d on a failed write", h.Seq)
	}
	if !strings.Contains(sink.String(), `"level":"ERROR"`) || !strings.Contains(sink.String(), "AUDIT LOG WRITE FAILED") {
		t.Errorf("log:\n%s", sink.String())
	}
	if err := l.Close(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Close = %v, want the final checkpoint's failure", err)
	}
}

// A write that fails once does not break the chain: the next batch reuses the
// sequence numbers and Healthy recovers.
func TestWriteFailureRecovers(t *testing.T) {
	o := testOptions(t)
	l, path := MustOpen(t, o)
	appendN(t, l, 2)
	l.db.Close()
	if _, err := l.Append(context.Background(), sampleRecord(2)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append on a closed file: %v", err)
	}
	// The file comes back. The writer reads l.db only after taking the next record
	// from the queue, which Append sends after this assignment: no race.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l.db = db
	r, err := l.Append(context.Background(), sampleRecord(3))
	if err != nil || r.Seq != 3 {
		t.Fatalf("Append after recovery: %+v, %v", r, err)
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy after recovery: %v", err)
	}
}
