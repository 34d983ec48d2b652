package archive

import (
	"io"
	"time"
)

// pacer keeps the retention policy's work to a share of the time: after working
// for d it rests for idle·d. Verifying, hashing and uploading a segment are a
// burst of CPU that would otherwise take a core from the gateway's calls.
type pacer struct {
	idle  float64
	since time.Time
	sleep func(time.Duration)
}

func newPacer(idle float64) *pacer {
	return &pacer{idle: idle, since: time.Now(), sleep: time.Sleep}
}

// rest sleeps for idle times the work done since the last rest.
func (p *pacer) rest() {
	if p == nil || p.idle <= 0 {
		return
	}
	worked := time.Since(p.since)
	p.sleep(time.Duration(float64(worked) * p.idle))
	p.since = time.Now()
}

// reader rests after every MiB read through it (and so worked on by its reader).
func (p *pacer) reader(r io.Reader) io.Reader {
	if p == nil || p.idle <= 0 {
		return r
	}
	return &pacedReader{r: r, p: p}
}

type pacedReader struct {
	r io.Reader
	p *pacer
	n int
}

func (pr *pacedReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if pr.n += n; pr.n >= 1<<20 {
		pr.n = 0
		pr.p.rest()
	}
	return n, err
}
