package tokens

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
)

// minPreservedBits is the least randomness a format-preserving token carries.
const minPreservedBits = 20

const (
	digits = "0123456789"
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
)

// preserve draws a token of value's shape. Errors never quote the value.
func (f Format) preserve(r io.Reader, value string) (string, error) {
	rs := []rune(value)
	keep := f.KeepPrefix
	if f.Check == CheckIBAN {
		keep = max(keep, 2) // the country
	}
	var drawn []int // positions replaced, in order
	bits := 0.0
	for i, c := range rs {
		if i < keep || i >= len(rs)-f.KeepSuffix {
			continue
		}
		// Every letter and digit of any script is replaced (by an ASCII one of
		// its class; an uncased letter by a lower-case one): only separators
		// stay, "CZ65 0800", "915714/4238".
		var set string
		switch {
		case unicode.IsDigit(c):
			set = digits
		case unicode.IsUpper(c):
			set = upper
		case unicode.IsLetter(c):
			set = lower
		default:
			continue
		}
		b, err := pick(r, set)
		if err != nil {
			return "", err
		}
		rs[i] = rune(b)
		drawn = append(drawn, i)
		bits += math.Log2(float64(len(set)))
	}
	if f.Check != "" {
		bits -= math.Log2(10) // a check digit is computed, not drawn
	}
	if bits < minPreservedBits {
		// The value would be all but given away by the tokens that never
		// equal it: an app that sees a few learns what is missing.
		return "", fmt.Errorf("%w: the format keeps too much of the value (%.0f random bits, want %d)", ErrFormat, bits, minPreservedBits)
	}
	switch f.Check {
	case CheckIBAN:
		if err := fixIBAN(rs); err != nil {
			return "", err
		}
	case CheckLuhn:
		if err := fixLuhn(rs, drawn); err != nil {
			return "", err
		}
	}
	return string(rs), nil
}

// alnum returns the positions of rs's letters and digits: an IBAN or card number
// written in groups.
func alnum(rs []rune) []int {
	var at []int
	for i, c := range rs {
		if c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c)) {
			at = append(at, i)
		}
	}
	return at
}

// fixIBAN writes the check digits that make rs a valid IBAN. Its country code
// was kept; the check digits are always computed, even where they were to be kept.
func fixIBAN(rs []rune) error {
	at := alnum(rs)
	isDigit := func(c rune) bool { return c >= '0' && c <= '9' }
	if len(at) < 5 || !unicode.IsUpper(rs[at[0]]) || !unicode.IsUpper(rs[at[1]]) || !isDigit(rs[at[2]]) || !isDigit(rs[at[3]]) {
		return fmt.Errorf("%w: not an IBAN (country, check digits, account)", ErrFormat)
	}
	compact := make([]rune, 0, len(at))
	for _, i := range at {
		compact = append(compact, rs[i])
	}
	check := 98 - ibanMod(compact)
	rs[at[2]], rs[at[3]] = rune('0'+check/10), rune('0'+check%10)
	return nil
}

// ibanMod is ISO 7064 mod 97-10 of the IBAN with zero check digits: the
// account part, then the country, letters as 10 to 35.
func ibanMod(compact []rune) int {
	rearranged := append(append(append([]rune{}, compact[4:]...), compact[:2]...), '0', '0')
	m := 0
	for _, c := range rearranged {
		var v int
		if c >= '0' && c <= '9' {
			v = int(c - '0')
		} else {
			v = int(unicode.ToUpper(c)-'A') + 10
		}
		for _, d := range strconv.Itoa(v) {
			m = (m*10 + int(d-'0')) % 97
		}
	}
	return m
}

// ValidIBAN reports whether s (groups allowed) has valid IBAN check digits.
func ValidIBAN(s string) bool {
	rs := []rune(s)
	at := alnum(rs)
	if len(at) < 5 {
		return false
	}
	compact := make([]rune, 0, len(at))
	for _, i := range at {
		compact = append(compact, rs[i])
	}
	want := 98 - ibanMod(compact)
	return string(compact[2:4]) == fmt.Sprintf("%02d", want)
}

// fixLuhn sets the last drawn digit so that rs's digits pass the Luhn check.
func fixLuhn(rs []rune, drawn []int) error {
	for j := len(drawn) - 1; j >= 0; j-- {
		i := drawn[j]
		if rs[i] < '0' || rs[i] > '9' {
			continue
		}
		for d := '0'; d <= '9'; d++ {
			rs[i] = d
			if ValidLuhn(string(rs)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no digit to make the Luhn check valid with", ErrFormat)
}

// ValidLuhn reports whether the digits of s (other characters ignored) pass the
// Luhn check.
func ValidLuhn(s string) bool {
	sum, n, double := 0, 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum, n, double = sum+d, n+1, !double
	}
	return n > 1 && sum%10 == 0
}
