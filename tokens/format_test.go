package tokens

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestOpaque(t *testing.T) {
	for _, f := range []Format{{Kind: KindOpaque}, {Kind: KindOpaque, Prefix: "iban_", Length: 32}} {
		seen := map[string]bool{}
		for range 100 {
			tok, err := f.generate(rand.Reader, "CZ6508000000192000145399")
			if err != nil {
				t.Fatal(err)
			}
			if !f.IsOpaque(tok) || seen[tok] {
				t.Fatalf("%+v: token %q is not opaque or repeats", f, tok)
			}
			seen[tok] = true
		}
	}
	f := Format{Kind: KindOpaque}
	for _, s := range []string{"", "tok_", "tok_abc", "tok_" + strings.Repeat("a", 23) + "!", "TOK_" + strings.Repeat("a", 24), "tok_" + strings.Repeat("a", 25)} {
		if f.IsOpaque(s) {
			t.Errorf("IsOpaque(%q)", s)
		}
	}
}

func TestPreserve(t *testing.T) {
	tests := []struct {
		name  string
		f     Format
		value string
		check func(string) bool
	}{
		{"birth number", Format{Kind: KindPreserve}, "915714/4238", nil},
		{"card, last four kept", Format{Kind: KindPreserve, KeepSuffix: 4, Check: CheckLuhn}, "4111 1111 1111 1111", ValidLuhn},
		{"card without groups", Format{Kind: KindPreserve, KeepPrefix: 4, KeepSuffix: 4, Check: CheckLuhn}, "5555555555554444", ValidLuhn},
		{"iban", Format{Kind: KindPreserve, Check: CheckIBAN}, "CZ65 0800 0000 1920 0014 5399", ValidIBAN},
		{"iban, bank code kept", Format{Kind: KindPreserve, KeepPrefix: 9, Check: CheckIBAN}, "CZ6508000000192000145399", ValidIBAN},
		{"name with diacritics", Format{Kind: KindPreserve}, "Nováková", nil},
		{"document number", Format{Kind: KindPreserve, KeepPrefix: 2}, "AB1234567", nil},
		{"a name in any script", Format{Kind: KindPreserve}, "王小明 Wang", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				tok, err := tt.f.generate(rand.Reader, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				checkShape(t, tt.f, tt.value, tok)
				if tt.check != nil && !tt.check(tok) {
					t.Fatalf("token %q fails its check digits", tok)
				}
			}
		})
	}
}

// checkShape asserts what a format-preserving token keeps of the value.
func checkShape(t testing.TB, f Format, value, tok string) {
	t.Helper()
	v, k := []rune(value), []rune(tok)
	if tok == value || len(v) != len(k) || !utf8.ValidString(tok) {
		t.Fatalf("token %q of %q: equal, another length or not UTF-8", tok, value)
	}
	at := alnum(k)
	for i := range v {
		iban := f.Check == CheckIBAN && len(at) > 3
		kept := i < f.KeepPrefix || i >= len(v)-f.KeepSuffix || iban && (i == at[0] || i == at[1])
		if iban && (i == at[2] || i == at[3]) {
			kept = false // recomputed
		}
		switch {
		case kept && k[i] != v[i]:
			t.Fatalf("token %q of %q changed position %d, which is kept", tok, value, i)
		case kept:
		case class(v[i]) != class(k[i]) || class(v[i]) != 0 && k[i] > unicode.MaxASCII:
			t.Fatalf("token %q of %q: position %d has another class, or is not replaced", tok, value, i)
		case !unicode.IsLetter(v[i]) && !unicode.IsDigit(v[i]) && k[i] != v[i]:
			t.Fatalf("token %q of %q: separator at %d changed", tok, value, i)
		}
	}
}

func TestPreserveRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		f     Format
		value string
	}{
		"nothing to replace": {Format{Kind: KindPreserve}, "--/--"},
		"all kept":           {Format{Kind: KindPreserve, KeepPrefix: 3, KeepSuffix: 3}, "12345"},
		"not an iban":        {Format{Kind: KindPreserve, Check: CheckIBAN}, "12345678"},
		"luhn without digit": {Format{Kind: KindPreserve, KeepSuffix: 1, Check: CheckLuhn}, "abcdefgh1"},
		"too little random":  {Format{Kind: KindPreserve, KeepPrefix: 9}, "9157144238"},
		"a short value":      {Format{Kind: KindPreserve}, "4238"},
	} {
		_, err := c.f.generate(rand.Reader, c.value)
		if !errors.Is(err, ErrFormat) || strings.Contains(err.Error(), c.value) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A draw equal to the value is drawn again: the stream first yields the value.
func TestTokenNeverEqualsTheValue(t *testing.T) {
	f := Format{Kind: KindPreserve}
	tok, err := f.generate(bytes.NewReader([]byte{1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1}), "1234567")
	if err != nil || tok != "7654321" {
		t.Fatalf("token %q, %v: want the second draw", tok, err)
	}
}

func TestFormatValidate(t *testing.T) {
	for _, f := range []Format{
		{Kind: "fpe"}, {Kind: KindOpaque, Length: 8}, {Kind: KindOpaque, Prefix: "tok "},
		{Kind: KindPreserve, Check: "mod11"}, {Kind: KindPreserve, KeepPrefix: -1}, {Kind: KindPreserve, Prefix: "x"},
	} {
		if err := f.Validate(); !errors.Is(err, ErrFormat) {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for _, f := range []Format{{Kind: KindOpaque}, {Kind: KindPreserve, KeepSuffix: 4, Check: CheckLuhn}} {
		if err := f.Validate(); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func TestCheckDigits(t *testing.T) {
	for s, want := range map[string]bool{
		"CZ65 0800 0000 1920 0014 5399": true, "CZ66 0800 0000 1920 0014 5399": false,
		"GB82WEST12345698765432": true, "GB82": false,
	} {
		if ValidIBAN(s) != want {
			t.Errorf("ValidIBAN(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"4111 1111 1111 1111": true, "4111 1111 1111 1112": false, "0": false} {
		if ValidLuhn(s) != want {
			t.Errorf("ValidLuhn(%q) != %v", s, want)
		}
	}
}

func FuzzPreserve(f *testing.F) {
	f.Add("CZ65 0800 0000 1920 0014 5399", uint8(0), uint8(0), CheckIBAN)
	f.Add("4111 1111 1111 1111", uint8(0), uint8(4), CheckLuhn)
	f.Add("915714/4238", uint8(2), uint8(0), "")
	f.Add("Nováková", uint8(1), uint8(1), "")
	f.Fuzz(func(t *testing.T, value string, keepPrefix, keepSuffix uint8, check string) {
		if !utf8.ValidString(value) {
			return
		}
		fm := Format{Kind: KindPreserve, KeepPrefix: int(keepPrefix % 8), KeepSuffix: int(keepSuffix % 8), Check: check}
		if fm.Validate() != nil {
			return
		}
		tok, err := fm.generate(rand.Reader, value)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		checkShape(t, fm, value, tok)
		if check == CheckIBAN && !ValidIBAN(tok) || check == CheckLuhn && !ValidLuhn(tok) {
			t.Fatalf("token %q of %q fails its %s check", tok, value, check)
		}
	})
}

func FuzzIsOpaque(f *testing.F) {
	f.Add("tok_abcdefghijklmnopqrstuvwx")
	f.Add("tok_")
	f.Fuzz(func(t *testing.T, s string) {
		fm := Format{Kind: KindOpaque}
		if fm.IsOpaque(s) && (len(s) != len(defaultPrefix)+defaultLength || !strings.HasPrefix(s, defaultPrefix)) {
			t.Fatalf("IsOpaque(%q)", s)
		}
	})
}

// class is what a format-preserving token keeps of a character: a digit, an
// upper-case letter, another letter (lower-case or uncased, as in Chinese), or
// a separator (0), which stays as it is.
func class(r rune) int {
	switch {
	case unicode.IsDigit(r):
		return 1
	case unicode.IsUpper(r):
		return 2
	case unicode.IsLetter(r):
		return 3
	}
	return 0
}
