package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

func TestHMACNormalisation(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"915714/4238", "9157144238", true},
		{"915714/4238", " 915714 / 4238\n", true},
		{"915714/4238", "915714-4238", true},
		{"123.456.789-09", "12345678909", true},
		{"870101 300 123", "870101300123", true}, // IIN with spaces
		{"  user-42 ", "user-42", true},
		{"user-42", "user42", false},     // letters: separators are part of the value
		{"AB123456", "ab123456", false},  // case is kept
		{"AB 123456", "AB123456", false}, // letters and digits: kept as typed
		{"915714/4238", "915714/4239", false},
		{"--//", "", false},                       // separators alone are no number
		{"+420 777", "420777", false},             // "+" is not a separator
		{"\u00a0915714/4238", "9157144238", true}, // TrimSpace knows the no-break space
	} {
		if got := HMAC(testHMACKey, tt.a) == HMAC(testHMACKey, tt.b); got != tt.same {
			t.Errorf("HMAC(%q) == HMAC(%q): %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// For a value the rules leave as it is, HMAC is plain HMAC-SHA256 hex: what the consent
// registry stores for a subject, so auditors can correlate the two.
func TestHMACIsPlainHMACOfNormalisedValue(t *testing.T) {
	m := hmac.New(sha256.New, testHMACKey)
	m.Write([]byte("9157144238"))
	want := hex.EncodeToString(m.Sum(nil))
	if got := HMAC(testHMACKey, testBirthNumber); got != want {
		t.Errorf("HMAC = %s, want %s", got, want)
	}
	if !IsHMAC(want) {
		t.Errorf("%s is not what Append accepts", want)
	}
}

// A Hasher gives HMAC's answer for every value, however often its states are
// reused, and from many goroutines at once.
func TestHasherIsHMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := NewHasher(key)
	if !h.Keyed(string(key)) || h.Keyed("another key") {
		t.Fatal("Keyed does not tell its key")
	}
	values := []string{"", "9157144238", " 915714/4238 ", "AB 123456", "ž", strings.Repeat("x", 200)}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for _, v := range values {
					if got, want := h.HMAC(v), HMAC(key, v); got != want {
						t.Errorf("Hasher.HMAC(%q) = %s, HMAC = %s", v, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
