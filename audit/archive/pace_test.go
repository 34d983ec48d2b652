package archive

import (
	"bytes"
	"io"
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
