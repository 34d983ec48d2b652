package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// redacted replaces an injected secret wherever a vendor echoes it.
const redacted = "[REDACTED]"

// scrubber replaces injected secret values. Vendors echo what they were sent in
// error messages ("invalid api_key …") and debug fields; the app must never see it.
type scrubber struct {
	secrets [][]byte
	maxLen  int
}

func newScrubber(values []string) *scrubber {
	s := &scrubber{}
	for _, v := range values {
		if len(v) < minScrubLen {
			continue
		}
		s.secrets = append(s.secrets, []byte(v))
		s.maxLen = max(s.maxLen, len(v))
	}
	return s
}

func (s *scrubber) empty() bool { return len(s.secrets) == 0 }

func (s *scrubber) bytes(b []byte) []byte {
	for _, sec := range s.secrets {
		if bytes.Contains(b, sec) {
			b = bytes.ReplaceAll(b, sec, []byte(redacted))
		}
	}
	return b
}

func (s *scrubber) string(v string) string {
	for _, sec := range s.secrets {
		v = strings.ReplaceAll(v, string(sec), redacted)
	}
	return v
}

func (s *scrubber) header(h http.Header) {
	for k, vs := range h {
		for i, v := range vs {
			vs[i] = s.string(v)
		}
		h[k] = vs
	}
}

// reader scrubs a stream. It holds back the last maxLen-1 bytes of what it has
// read, because they may be the start of a secret split across reads.
func (s *scrubber) reader(r io.ReadCloser) io.ReadCloser {
	return &scrubReader{s: s, src: r, chunk: make([]byte, 32<<10)}
}

type scrubReader struct {
	s     *scrubber
	src   io.ReadCloser
	chunk []byte
	held  []byte
	ready []byte
	err   error
}

func (r *scrubReader) Read(p []byte) (int, error) {
	for len(r.ready) == 0 {
		if r.err != nil {
			if len(r.held) > 0 {
				r.ready, r.held = r.s.bytes(r.held), nil
				break
			}
			return 0, r.err
		}
		n, err := r.src.Read(r.chunk)
		r.held = r.s.bytes(append(r.held, r.chunk[:n]...))
		if err != nil {
			r.err = err
			continue
		}
		if keep := r.s.maxLen - 1; len(r.held) > keep {
			cut := len(r.held) - keep
			r.ready = append(r.ready[:0], r.held[:cut]...)
			r.held = append(r.held[:0], r.held[cut:]...)
		}
	}
	n := copy(p, r.ready)
	r.ready = r.ready[n:]
	return n, nil
}

func (r *scrubReader) Close() error { return r.src.Close() }
