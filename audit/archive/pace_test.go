package archive

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"
)

// A paced reader rests after every MiB for idle times the time spent since the
// last rest; with no idle it is the reader itself.
func TestPacerRests(t *testing.T) {
	var slept []time.Duration
	p := newPacer(3)
	p.sleep = func(d time.Duration) { slept = append(slept, d) }
	p.since = time.Now().Add(-10 * time.Millisecond)
	n, err := io.Copy(io.Discard, p.reader(bytes.NewReader(make([]byte, 3<<20+5))))
	if err != nil || n != 3<<20+5 {
		t.Fatal(n, err)
	}
	if len(slept) != 3 || slept[0] < 30*time.Millisecond {
		t.Errorf("rests %v: want 3, the first at least 3 × 10 ms", slept)
	}
	r := bytes.NewReader(nil)
	if newPacer(0).reader(r) != io.Reader(r) {
		t.Error("a pacer with no idle wrapped the reader")
	}
}

// An upload's file stays an io.ReaderAt (an S3 upload reads parts in place),
// rests on reads at offsets too, and hashes what went out in order; a read that
// skips ahead leaves it without a hash, a part read again is not hashed twice.
func TestUploadFileHashesWhatGoesOut(t *testing.T) {
	data := make([]byte, 2<<20+7)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.CreateTemp(t.TempDir(), "seg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	rests := 0
	p := newPacer(3)
	p.sleep = func(time.Duration) { rests++ }
	u := p.upload(f)
	var r io.ReaderAt = u
	half := int64(len(data) / 2)
	// Two parts, the first read twice (a retry).
	for _, part := range [][2]int64{{0, half}, {0, half}, {half, int64(len(data)) - half}} {
		if _, err := io.Copy(io.Discard, io.NewSectionReader(r, part[0], part[1])); err != nil {
			t.Fatal(err)
		}
	}
	if sum, ok := u.sum(int64(len(data))); !ok || sum != sha256.Sum256(data) {
		t.Errorf("the upload's hash: %x, %v", sum, ok)
	}
	if rests < 3 {
		t.Errorf("%d rests reading 3 MiB at offsets", rests)
	}
	skipped := p.upload(f)
	io.Copy(io.Discard, io.NewSectionReader(skipped, half, int64(len(data))-half))
	if _, ok := skipped.sum(int64(len(data))); ok {
		t.Error("an upload that skipped the first half has a hash")
	}
}
