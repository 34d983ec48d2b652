// Package logsink is an in-memory log destination for tests that search what
// consentgate logged (for secrets, raw personal data, or the canonical line).
// It is safe for the concurrent writers a running gateway has.
package logsink

import (
	"bytes"
	"sync"
)

// Buffer collects everything written to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
