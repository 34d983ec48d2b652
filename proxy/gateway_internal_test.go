package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/tokens"
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

// A decision that tokenizes without a vault (keys.token_vault unset), or
// without a consent to bind the token to, fails closed: 503, and nothing of the
// vendor's answer is passed on.
func TestTokenizeWithoutAVaultFailsClosed(t *testing.T) {
	op := &operation{cfg: &configs.Operation{ID: "airbank.personalData", Fields: configs.Fields{Response: map[string]string{"birthNumber": "national_id"}}}}
	for name, c := range map[string]struct {
		g  *Gateway
		ob *outbound
	}{
		"no vault":   {&Gateway{}, &outbound{op: op, ex: &exchange{consentID: "c-1", subject: "s", app: "web", vendor: "airbank"}}},
		"no consent": {&Gateway{tokens: tokens.New(nil, nil, nil, nil)}, &outbound{op: op, ex: &exchange{app: "web", vendor: "airbank"}}},
	} {
		_, err := c.g.tokenizer(t.Context(), c.ob)("birthNumber", "9157144238")
		r := upstreamRefusal(err)
		if err == nil || r.Status != http.StatusServiceUnavailable || r.Kind != refusal.TokenVault || strings.Contains(err.Error(), "9157144238") {
			t.Errorf("%s: %v → %d %s", name, err, r.Status, r.Kind)
		}
	}
}
