package archive

import (
	"io"
	"os"
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

// file paces reads of f as reader does, keeping it an io.ReaderAt: an S3 upload
// then reads each part from the file where it is instead of buffering it.
func (p *pacer) file(f *os.File) io.Reader {
	if p == nil || p.idle <= 0 {
		return f
	}
	return &pacedFile{pacedReader: pacedReader{r: f, p: p}, f: f}
}

type pacedFile struct {
	pacedReader
	f *os.File
}

func (pf *pacedFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := pf.f.ReadAt(b, off)
	if pf.n += n; pf.n >= 1<<20 {
		pf.n = 0
		pf.p.rest()
	}
	return n, err
}
