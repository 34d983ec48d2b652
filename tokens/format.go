package tokens

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format is what a token looks like.
//
// An opaque token is Prefix and Length random letters and digits: apps and logs
// can tell it is a token. A format-preserving token has the value's length and
// character classes (a digit for a digit, a letter for a letter of the same
// case, anything else as it is), keeps KeepPrefix and KeepSuffix characters of
// the value (a card's last four), and, with Check, carries valid check digits, so
// that what validates and stores the value takes the token too.
type Format struct {
	Kind       string // KindOpaque or KindPreserve
	Prefix     string // opaque: default "tok_"
	Length     int    // opaque: random characters, default 24
	KeepPrefix int    // preserve: leading characters kept
	KeepSuffix int    // preserve: trailing characters kept
	Check      string // preserve: "", CheckIBAN or CheckLuhn
}

// Kinds of format and check digits.
const (
	KindOpaque   = "opaque"
	KindPreserve = "preserve"
	CheckIBAN    = "iban" // ISO 13616: country, two check digits (mod 97), the rest
	CheckLuhn    = "luhn" // payment card numbers
)

const (
	defaultPrefix = "tok_"
	defaultLength = 24
	minLength     = 16 // 95 bits of base-62 randomness at least
	alphanumeric  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrFormat means a value the format cannot tokenize, or a format that is not valid.
var ErrFormat = errors.New("token format")

// Validate reports what is wrong with f.
func (f Format) Validate() error {
	switch f.Kind {
	case KindOpaque:
		if f.Length != 0 && f.Length < minLength {
			return fmt.Errorf("%w: an opaque token needs at least %d random characters", ErrFormat, minLength)
		}
		if strings.IndexFunc(f.Prefix, func(r rune) bool { return !strings.ContainsRune(alphanumeric+"_-", r) }) >= 0 {
			return fmt.Errorf("%w: prefix %q: letters, digits, _ and - only", ErrFormat, f.Prefix)
		}
	case KindPreserve:
		if f.KeepPrefix < 0 || f.KeepSuffix < 0 || f.Prefix != "" || f.Length != 0 {
			return fmt.Errorf("%w: a format-preserving token takes keep_prefix, keep_suffix and check only", ErrFormat)
		}
		if f.Check != "" && f.Check != CheckIBAN && f.Check != CheckLuhn {
			return fmt.Errorf("%w: check %q: use iban or luhn", ErrFormat, f.Check)
		}
	default:
		return fmt.Errorf("%w: kind %q: use opaque or preserve", ErrFormat, f.Kind)
	}
	return nil
}

// generate makes a token for value from the random stream r. It never returns
// the value itself: a candidate equal to it is drawn again.
func (f Format) generate(r io.Reader, value string) (string, error) {
	for range 8 {
		var t string
		var err error
		if f.Kind == KindOpaque {
			t, err = f.opaque(r)
		} else {
			t, err = f.preserve(r, value)
		}
		if err != nil || t != value {
			return t, err
		}
	}
	return "", fmt.Errorf("%w: no token differs from the value (too little of it is replaced)", ErrFormat)
}

func (f Format) opaque(r io.Reader) (string, error) {
	prefix, n := f.Prefix, f.Length
	if prefix == "" {
		prefix = defaultPrefix
	}
	if n == 0 {
		n = defaultLength
	}
	b := []byte(prefix)
	for range n {
		c, err := pick(r, alphanumeric)
		if err != nil {
			return "", err
		}
		b = append(b, c)
	}
	return string(b), nil
}

// IsOpaque reports whether s has the shape of an opaque token of f: what the
// gateway looks up in a request field that carries opaque tokens.
func (f Format) IsOpaque(s string) bool {
	prefix, n := f.Prefix, f.Length
	if prefix == "" {
		prefix = defaultPrefix
	}
	if n == 0 {
		n = defaultLength
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != n {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(alphanumeric, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// pick draws one character of set from r without modulo bias.
func pick(r io.Reader, set string) (byte, error) {
	limit := 256 - 256%len(set)
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("drawing a token: %w", err)
		}
		if int(b[0]) < limit {
			return set[int(b[0])%len(set)], nil
		}
	}
}
