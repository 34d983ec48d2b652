package archive

import (
	"bytes"
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

// A paced file stays an io.ReaderAt (an S3 upload reads parts in place) and rests
// on reads at offsets too.
func TestPacedFileReadsAt(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "seg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 2<<20)); err != nil {
		t.Fatal(err)
	}
	rests := 0
	p := newPacer(3)
	p.sleep = func(time.Duration) { rests++ }
	r, ok := p.file(f).(io.ReaderAt)
	if !ok {
		t.Fatal("a paced file is not an io.ReaderAt")
	}
	if _, err := io.Copy(io.Discard, io.NewSectionReader(r, 0, 2<<20)); err != nil {
		t.Fatal(err)
	}
	if rests != 2 {
		t.Errorf("%d rests reading 2 MiB at offsets, want 2", rests)
	}
}
