package archive

import (
	"crypto/sha256"
	"hash"
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

// upload is f as an upload reads it: paced, an io.ReaderAt (an S3 upload then
// reads each part from the file where it is instead of buffering it), and hashed
// as the bytes go out in order, so the file need not be read once more for its
// SHA-256 (sum reports whether every byte went out once, in order).
func (p *pacer) upload(f *os.File) *uploadFile {
	return &uploadFile{pacedReader: pacedReader{r: f, p: p}, f: f, h: sha256.New()}
}

type uploadFile struct {
	pacedReader
	f      *os.File
	h      hash.Hash
	pos    int64 // bytes hashed, from the start
	broken bool  // a read skipped ahead: the hash is not the file's
}

func (u *uploadFile) Read(b []byte) (int, error) {
	n, err := u.pacedReader.Read(b)
	u.hashed(b[:n], u.pos)
	return n, err
}

func (u *uploadFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := u.f.ReadAt(b, off)
	u.hashed(b[:n], off)
	if u.n += n; u.n >= 1<<20 {
		u.n = 0
		u.p.rest()
	}
	return n, err
}

// hashed takes bytes read at off into the hash if they continue it; a part read
// again (a retried upload) is left out.
func (u *uploadFile) hashed(b []byte, off int64) {
	switch end := off + int64(len(b)); {
	case off == u.pos:
		u.h.Write(b)
		u.pos = end
	case end <= u.pos:
	default:
		u.broken = true
	}
}

// sum is the SHA-256 of the size bytes read, if they were all read in order.
func (u *uploadFile) sum(size int64) ([32]byte, bool) {
	if u.broken || u.pos != size {
		return [32]byte{}, false
	}
	return [32]byte(u.h.Sum(nil)), true
}
