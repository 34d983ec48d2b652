package sandbox

import (
	"bytes"
	"fmt"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// validBirthNumber is the check a Czech registry applies to a ten-digit rodné číslo.
func validBirthNumber(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && len(s) == 10 && n%11 == 0
}

// validIBAN is the ISO 13616 check: move the country and check digits to the end, turn
// letters into numbers, and the result is 1 modulo 97.
func validIBAN(iban string) bool {
	if len(iban) < 5 {
		return false
	}
	var digits []byte
	for _, ch := range []byte(iban[4:] + iban[:4]) {
		switch {
		case ch >= '0' && ch <= '9':
			digits = append(digits, ch)
		case ch >= 'A' && ch <= 'Z':
			digits = strconv.AppendInt(digits, int64(ch-'A'+10), 10)
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(string(digits), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

func TestCzechPeopleHaveValidBirthNumbers(t *testing.T) {
	for _, p := range []czechPerson{kbClient(), airbankClient(), banqwareClient()} {
		t.Run(p.Surname, func(t *testing.T) {
			if !validBirthNumber(p.BirthNumber) {
				t.Errorf("birth number %q is not ten digits divisible by 11", p.BirthNumber)
			}
			month := int(p.Birth.Month())
			if p.Female {
				month += 50
			}
			if want := fmt.Sprintf("%02d%02d%02d", p.Birth.Year()%100, month, p.Birth.Day()); p.BirthNumber[:6] != want {
				t.Errorf("birth number %q does not start with %s", p.BirthNumber, want)
			}
		})
	}
}

func TestCzechBirthNumberSkipsRemainderTen(t *testing.T) {
	// 900101/003: 900101003 mod 11 = 10, so the generator must move on to serial 004.
	got := czechBirthNumber(date(1990, 1, 1), false, 3)
	if got[:9] != "900101004" || !validBirthNumber(got) {
		t.Errorf("czechBirthNumber = %q", got)
	}
}

func TestIINCheckDigit(t *testing.T) {
	// Reference values computed independently of this package.
	tests := []struct {
		first11 string
		want    int
		ok      bool
	}{
		{"93022144000", 0, true},  // first weights
		{"93022144010", 7, true},  // first weights give 10, second weights give 7
		{"93022144017", 0, false}, // both give 10: no valid IIN
	}
	for _, tt := range tests {
		got, ok := iinCheckDigit(tt.first11)
		if got != tt.want || ok != tt.ok {
			t.Errorf("iinCheckDigit(%s) = %d, %v; want %d, %v", tt.first11, got, ok, tt.want, tt.ok)
		}
	}
}

func TestKazakhIINsRoundTrip(t *testing.T) {
	tests := []struct {
		birth  time.Time
		female bool
		digit  byte
	}{
		{date(1993, 2, 21), true, '4'},
		{date(1987, 9, 3), false, '3'},
		{date(2004, 12, 31), false, '5'},
		{date(2001, 6, 1), true, '6'},
	}
	for _, tt := range tests {
		iin := kazakhIIN(tt.birth, tt.female, 17)
		if iin[6] != tt.digit {
			t.Errorf("kazakhIIN(%s, female=%v) = %s, century digit want %c", tt.birth.Format(time.DateOnly), tt.female, iin, tt.digit)
		}
		birth, female, err := parseIIN(iin)
		if err != nil || !birth.Equal(tt.birth) || female != tt.female {
			t.Errorf("parseIIN(%s) = %s, %v, %v", iin, birth.Format(time.DateOnly), female, err)
		}
	}
}

func TestParseIINRefuses(t *testing.T) {
	valid := kazakhIIN(date(1993, 2, 21), true, 3127)
	wrongCheck := valid[:11] + strconv.Itoa((int(valid[11]-'0')+1)%10)
	for name, iin := range map[string]string{
		"11 digits":         valid[:11],
		"13 digits":         valid + "0",
		"letters":           "93022A440000",
		"wrong check digit": wrongCheck,
		"no such date":      withCheckDigit("93023141234"), // 31 February
		"century digit 7":   withCheckDigit("93022171234"),
		"month 13":          withCheckDigit("93132141234"),
	} {
		if _, _, err := parseIIN(iin); err == nil {
			t.Errorf("%s: parseIIN(%q) accepted it", name, iin)
		}
	}
}

func withCheckDigit(first11 string) string {
	for {
		if c, ok := iinCheckDigit(first11); ok {
			return first11 + strconv.Itoa(c)
		}
		n, _ := strconv.Atoi(first11[7:])
		first11 = fmt.Sprintf("%s%04d", first11[:7], n+1)
	}
}

func TestKazakhPersonFollowsTheIIN(t *testing.T) {
	man := kazakhIIN(date(1979, 5, 30), false, 42)
	p := kazakhPersonFor(man)
	if p.IIN != man || p.Female || !p.Birth.Equal(date(1979, 5, 30)) || p.FirstName != kazakhMan().FirstName {
		t.Errorf("kazakhPersonFor(%s) = %+v", man, p)
	}
	woman := kazakhIIN(date(2002, 8, 15), true, 42)
	if p := kazakhPersonFor(woman); !p.Female || !p.Birth.Equal(date(2002, 8, 15)) || p.LastName != kazakhWoman().LastName {
		t.Errorf("kazakhPersonFor(%s) = %+v", woman, p)
	}
	if p := kazakhPersonFor("123456789012"); p.IIN != "123456789012" || p.FirstName == "" {
		t.Errorf("kazakhPersonFor(unparsable) = %+v", p)
	}
	for _, p := range []kazakhPerson{kazakhMan(), kazakhWoman()} {
		if birth, female, err := parseIIN(p.IIN); err != nil || !birth.Equal(p.Birth) || female != p.Female {
			t.Errorf("fixture %s has IIN %s that does not match it: %v", p.LastName, p.IIN, err)
		}
	}
}

func TestCzechAccountsAndIBANs(t *testing.T) {
	// The IBAN registry's Czech example.
	if got := czechIBAN("0800", "000019", "2000145399"); got != "CZ6508000000192000145399" {
		t.Errorf("czechIBAN = %s, want CZ6508000000192000145399", got)
	}
	weights := []int{6, 3, 7, 9, 10, 5, 8, 4, 2, 1}
	for _, first9 := range []string{"123533501", "228713904", "190735842", "286104557", "000000000"} {
		number := czechAccountNumber(first9)
		sum := 0
		for i, w := range weights {
			sum += int(number[i]-'0') * w
		}
		if len(number) != 10 || sum%11 != 0 {
			t.Errorf("czechAccountNumber(%s) = %s fails the modulo-11 check", first9, number)
		}
		if iban := czechIBAN("3030", "", number); !validIBAN(iban) || len(iban) != 24 {
			t.Errorf("czechIBAN(3030, %s) = %s is not a valid IBAN", number, iban)
		}
	}
}

func TestCompanyICO(t *testing.T) {
	ico := kbIdentifyingCompanyICO()
	if err := certs.ValidateICO(ico); err != nil {
		t.Errorf("kbIdentifyingCompanyICO() = %s: %v", ico, err)
	}
	if got := companyICO("2708244"); got != testCompanyICO {
		t.Errorf("companyICO(2708244) = %s, want %s", got, testCompanyICO)
	}
}

func TestLivenessVideoIsDeterministicPerSession(t *testing.T) {
	a, b := livenessVideo("session-a"), livenessVideo("session-b")
	if len(a) != 4096 || !bytes.Equal(a[4:8], []byte("ftyp")) {
		t.Errorf("video has %d bytes and box %q", len(a), a[4:8])
	}
	if !bytes.Equal(a, livenessVideo("session-a")) {
		t.Error("the same session gives different videos")
	}
	if bytes.Equal(a, b) {
		t.Error("different sessions give the same video")
	}
}
