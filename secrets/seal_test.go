package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func newSealKey(t *testing.T) (*SealKey, string) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := ParseSealKey(hex.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	return k, hex.EncodeToString(raw)
}

func TestSealRoundTripAndTampering(t *testing.T) {
	k, _ := newSealKey(t)
	plain := []byte(`{"access_token":"tok-secret-123"}`)
	aad := []byte("consent-1\x00airbank")
	sealed, err := k.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("tok-secret-123")) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _ := k.Seal(plain, aad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := k.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := newSealKey(t)
	tests := []struct {
		name   string
		key    *SealKey
		sealed []byte
		aad    []byte
	}{
		{"flipped ciphertext byte", k, flip(sealed, len(sealed)-20), aad},
		{"flipped tag byte", k, flip(sealed, len(sealed)-1), aad},
		{"flipped nonce byte", k, flip(sealed, 3), aad},
		{"unknown version", k, flip(sealed, 0), aad},
		{"truncated", k, sealed[:10], aad},
		{"another place", k, sealed, []byte("consent-2\x00airbank")},
		{"another key", other, sealed, aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.key.Open(tt.sealed, tt.aad); !errors.Is(err, ErrSealBroken) {
				t.Fatalf("err = %v, want ErrSealBroken", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestParseSealKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, ok := range []string{hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw), " " + hex.EncodeToString(raw) + "\n"} {
		if _, err := ParseSealKey(ok); err != nil {
			t.Errorf("ParseSealKey(%q): %v", ok, err)
		}
	}
	secretish := "not-a-key-but-a-secret-value"
	for _, bad := range []string{"", secretish, hex.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 1))} {
		_, err := ParseSealKey(bad)
		if !errors.Is(err, ErrBadSealKey) {
			t.Errorf("ParseSealKey(%q) = %v, want ErrBadSealKey", bad, err)
		}
		if err != nil && bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}
