package proxy

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
)

// A stated length only sizes the buffer: what is read is what the reader gives.
func TestReadAllSizedReadsWhatIsThere(t *testing.T) {
	body := strings.Repeat("x", 3000)
	for _, tt := range []struct {
		name          string
		length, limit int64
	}{
		{"exact", 3000, 1 << 20},
		{"unknown", -1, 1 << 20},
		{"understated", 10, 1 << 20},
		{"overstated", 1 << 19, 1 << 20},
		{"beyond the limit", 1 << 30, 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAllSized(strings.NewReader(body), tt.length, tt.limit)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Fatalf("read %d bytes, err %v; want the %d bytes there", len(got), err, len(body))
			}
		})
	}
	if _, err := readAllSized(io.MultiReader(strings.NewReader("ab"), errReader{}), 2, 10); err == nil {
		t.Error("a read error was swallowed")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// Identifiers are hashed under the identifier key the secret provider gives
// now: a rotated key is used from the next call on, never the old one.
func TestIdentifierHasherFollowsTheKey(t *testing.T) {
	g := &Gateway{}
	first := g.identifierHasher("key-one-0123456789abcdef0123456789")
	if again := g.identifierHasher("key-one-0123456789abcdef0123456789"); again != first {
		t.Error("the same key made a new hasher")
	}
	rotated := g.identifierHasher("key-two-0123456789abcdef0123456789")
	if got, want := rotated.HMAC("9157144238"), audit.HMAC([]byte("key-two-0123456789abcdef0123456789"), "9157144238"); got != want {
		t.Errorf("after rotation the identifier hashes to %s, want %s under the new key", got, want)
	}
}
