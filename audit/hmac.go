package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strings"
	"sync"
)

// HMAC is how an identifier enters the log: HMAC-SHA256 under key, as lowercase hex.
// The gateway computes it when it writes a record and `consentgate audit search`
// computes it from what an auditor types, so both must normalise the value alike:
//
//   - surrounding white space is trimmed (strings.TrimSpace);
//   - a value made only of ASCII digits and the separators space, "/", "-" and ".",
//     with at least one digit, loses its separators: "915714/4238", "915714 4238" and
//     "9157144238" are one birth number, "123.456.789-09" is "12345678909";
//   - anything else (letters, other punctuation) is kept as it is, case included:
//     "AB 123456" is not "AB123456" nor "ab 123456".
//
// For a value the rules leave unchanged the result equals an HMAC-SHA256 of the raw
// value, so consent.Registry.SubjectHMAC of an already-normalised user id matches.
func HMAC(key []byte, value string) string {
	return digest(hmac.New(sha256.New, key), value)
}

// SubjectHMAC is an app user id's HMAC as the consent registry names it, and
// the records of calls under its consents: of the id as the app sent it, not
// normalised as identifiers are. Looking a person up needs both forms.
func SubjectHMAC(key []byte, subject string) string {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, subject)
	return hex.EncodeToString(m.Sum(nil))
}

// digest is the lowercase hex HMAC of value, normalised, with m keyed and
// reset.
func digest(m hash.Hash, value string) string {
	io.WriteString(m, normalise(value))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

func normalise(value string) string {
	v := strings.TrimSpace(value)
	digits := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == ' ' || c == '/' || c == '-' || c == '.':
		default:
			return v
		}
	}
	if digits == 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, v)
}

// Hasher is HMAC for one key, reusing keyed states: the gateway hashes several
// identifiers on every call, and a fresh HMAC costs two SHA-256 blocks and six
// allocations before the first byte of the value.
type Hasher struct {
	key  string
	pool sync.Pool
}

// NewHasher is a Hasher for key.
func NewHasher(key []byte) *Hasher {
	h := &Hasher{key: string(key)}
	h.pool.New = func() any { return hmac.New(sha256.New, key) }
	return h
}

// Keyed reports whether h hashes under key.
func (h *Hasher) Keyed(key string) bool { return h.key == key }

// HMAC is HMAC(key, value) for h's key.
func (h *Hasher) HMAC(value string) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	out := digest(m, value)
	h.pool.Put(m)
	return out
}
