package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// The people below are invented. Their identifiers are generated with the real check rules
// so that validation in consentgate (and in policies that derive age from them) works on
// sandbox data exactly as it would on a vendor's.

// czechPerson is a bank client as Czech KYC sources describe one.
type czechPerson struct {
	GivenName, Surname string
	Female             bool
	Birth              time.Time
	BirthNumber        string
	BirthPlace         string
	Citizenship        string
	// Nationality is národnost, which KB's data set holds beside citizenship.
	Nationality string
	PEP         bool
	Document    czechDocument
	Address     czechAddress
}

type czechDocument struct {
	Type          string // Air Bank's codes: ID_CARD, PASSPORT, ...
	Number        string
	Country       string
	PlaceOfIssue  string
	Issued, Valid time.Time // Valid is the last day of validity
}

type czechAddress struct {
	Street            string
	DescriptiveNumber string // číslo popisné
	OrientationNumber string // číslo orientační
	PostalCode        string
	Municipality      string
	Country           string
}

// buildingNumber joins the two Czech house numbers the way addresses print them ("2417/36").
func (a czechAddress) buildingNumber() string {
	if a.OrientationNumber == "" {
		return a.DescriptiveNumber
	}
	return a.DescriptiveNumber + "/" + a.OrientationNumber
}

func (p czechPerson) gender() string {
	if p.Female {
		return "F"
	}
	return "M"
}

func kbClient() czechPerson {
	birth := date(1991, 7, 14)
	return czechPerson{
		GivenName:   "Tereza",
		Surname:     "Horáková",
		Female:      true,
		Birth:       birth,
		BirthNumber: czechBirthNumber(birth, true, 423),
		BirthPlace:  "Olomouc",
		Citizenship: "CZ",
		Nationality: "česká",
		Document: czechDocument{
			Type: "ID_CARD", Number: "217456893", Country: "CZ",
			PlaceOfIssue: "Magistrát města Olomouce",
			Issued:       date(2021, 3, 8), Valid: date(2031, 3, 8),
		},
		Address: czechAddress{
			Street: "Wellnerova", DescriptiveNumber: "1322", OrientationNumber: "3",
			PostalCode: "77900", Municipality: "Olomouc", Country: "CZ",
		},
	}
}

// kbIdentifyingCompanyICO is the company that physically identified the kb client.
func kbIdentifyingCompanyICO() string { return companyICO("2719034") }

func airbankClient() czechPerson {
	birth := date(1988, 4, 17)
	return czechPerson{
		GivenName:   "Tomáš",
		Surname:     "Dvořák",
		Birth:       birth,
		BirthNumber: czechBirthNumber(birth, false, 136),
		BirthPlace:  "Pelhřimov",
		Citizenship: "CZ",
		Document: czechDocument{
			Type: "ID_CARD", Number: "204381976", Country: "CZ",
			PlaceOfIssue: "Magistrát města Jihlavy",
			Issued:       date(2020, 9, 30), Valid: date(2030, 9, 30),
		},
		Address: czechAddress{
			Street: "Brněnská", DescriptiveNumber: "2417", OrientationNumber: "36",
			PostalCode: "58601", Municipality: "Jihlava", Country: "CZ",
		},
	}
}

func banqwareClient() czechPerson {
	birth := date(1995, 11, 2)
	return czechPerson{
		GivenName:   "Lucie",
		Surname:     "Černá",
		Female:      true,
		Birth:       birth,
		BirthNumber: czechBirthNumber(birth, true, 718),
		BirthPlace:  "Praha",
		Citizenship: "CZ",
		Document: czechDocument{
			Type: "ID_CARD", Number: "219874563", Country: "CZ",
			PlaceOfIssue: "Úřad městské části Praha 3",
			Issued:       date(2022, 1, 12), Valid: date(2032, 1, 12),
		},
		Address: czechAddress{
			Street: "Koněvova", DescriptiveNumber: "2155", OrientationNumber: "41",
			PostalCode: "13000", Municipality: "Praha", Country: "CZ",
		},
	}
}

// kazakhPerson is a citizen as Kazakh identity sources (ID card, state databases) describe one.
type kazakhPerson struct {
	FirstName, LastName, Patronymic string
	Female                          bool
	Birth                           time.Time
	IIN                             string
	BirthPlace                      string
	Nationality                     string
	Phone                           string
	DocumentNumber                  string
	DocumentIssued, DocumentValid   time.Time
	Authority                       string
}

func kazakhWoman() kazakhPerson {
	birth := date(1993, 2, 21)
	return kazakhPerson{
		FirstName: "АЙГЕРИМ", LastName: "СЕЙТКАЛИЕВА", Patronymic: "ЕРЛАНОВНА",
		Female: true, Birth: birth, IIN: kazakhIIN(birth, true, 3127),
		BirthPlace: "АЛМАТЫ", Nationality: "КАЗАХ", Phone: "+77000000101",
		DocumentNumber: "046218537", DocumentIssued: date(2019, 5, 16), DocumentValid: date(2029, 5, 15),
		Authority: "МВД РК",
	}
}

func kazakhMan() kazakhPerson {
	birth := date(1987, 9, 3)
	return kazakhPerson{
		FirstName: "НУРЛАН", LastName: "ЖУМАБАЕВ", Patronymic: "МАРАТОВИЧ",
		Birth: birth, IIN: kazakhIIN(birth, false, 2204),
		BirthPlace: "КАРАГАНДА", Nationality: "КАЗАХ", Phone: "+77000000202",
		DocumentNumber: "039174625", DocumentIssued: date(2018, 11, 2), DocumentValid: date(2028, 11, 1),
		Authority: "МВД РК",
	}
}

// kazakhPersonFor answers for the citizen an IIN names: the birth date and sex come from the
// IIN itself, so a policy that derives age from the IIN agrees with the returned record. An
// IIN that does not parse still gets a record, carrying the IIN as given.
func kazakhPersonFor(iin string) kazakhPerson {
	birth, female, err := parseIIN(iin)
	if err != nil {
		p := kazakhWoman()
		p.IIN = iin
		return p
	}
	p := kazakhMan()
	if female {
		p = kazakhWoman()
	}
	p.IIN, p.Birth = iin, birth
	return p
}

func (p kazakhPerson) gender() string {
	if p.Female {
		return "FEMALE"
	}
	return "MALE"
}

func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// czechBirthNumber returns a rodné číslo (YYMMDDSSSC, women's month + 50) for people born
// from 1954, when the ten-digit form divisible by 11 began. A serial whose remainder would be
// 10 is skipped: the pre-1985 "check digit 0" exception is legal but looks like a typo.
func czechBirthNumber(birth time.Time, female bool, serial int) string {
	month := int(birth.Month())
	if female {
		month += 50
	}
	for ; ; serial++ {
		first9 := fmt.Sprintf("%02d%02d%02d%03d", birth.Year()%100, month, birth.Day(), serial%1000)
		n, _ := strconv.Atoi(first9)
		// 10·n + c ≡ 0 (mod 11) exactly when c ≡ n (mod 11), because 10 ≡ −1.
		if c := n % 11; c != 10 {
			return first9 + strconv.Itoa(c)
		}
	}
}

// kazakhIIN returns an individual identification number: YYMMDD, a digit for century and sex
// (3/4 for 1900–1999, 5/6 for 2000–2099, odd for men), a four-digit serial and a check digit.
// Serials whose check digit cannot be computed are skipped, as the registry does.
func kazakhIIN(birth time.Time, female bool, serial int) string {
	centuryDigit := (birth.Year()/100-18)*2 + 1
	if female {
		centuryDigit++
	}
	for ; ; serial++ {
		first11 := fmt.Sprintf("%02d%02d%02d%d%04d", birth.Year()%100, int(birth.Month()), birth.Day(), centuryDigit, serial%10000)
		if c, ok := iinCheckDigit(first11); ok {
			return first11 + strconv.Itoa(c)
		}
	}
}

// iinCheckDigit computes the twelfth digit of an IIN: weights 1..11, and if that leaves
// remainder 10, weights 3..11,1,2; a second 10 means no valid IIN has these eleven digits.
func iinCheckDigit(first11 string) (int, bool) {
	weighted := func(offset int) int {
		sum := 0
		for i := 0; i < 11; i++ {
			sum += int(first11[i]-'0') * ((i+offset)%11 + 1)
		}
		return sum % 11
	}
	if c := weighted(0); c != 10 {
		return c, true
	}
	if c := weighted(2); c != 10 {
		return c, true
	}
	return 0, false
}

var errIINFormat = errors.New("IIN must be 12 digits")

// parseIIN checks an IIN (digits, check digit, century digit, calendar date) and returns the
// birth date and sex it encodes.
func parseIIN(s string) (birth time.Time, female bool, err error) {
	if !allDigits(s, 12) {
		return time.Time{}, false, errIINFormat
	}
	if c, ok := iinCheckDigit(s[:11]); !ok || int(s[11]-'0') != c {
		return time.Time{}, false, errors.New("IIN check digit is wrong")
	}
	centuryDigit := int(s[6] - '0')
	if centuryDigit < 1 || centuryDigit > 6 {
		return time.Time{}, false, fmt.Errorf("IIN century digit %d is not 1–6", centuryDigit)
	}
	year := 1800 + (centuryDigit-1)/2*100 + atoi2(s[0:2])
	month, day := time.Month(atoi2(s[2:4])), atoi2(s[4:6])
	birth = date(year, month, day)
	// time.Date normalises 31 February to March; a changed date means it did not exist.
	if birth.Month() != month || birth.Day() != day {
		return time.Time{}, false, errors.New("IIN does not start with a valid birth date")
	}
	return birth, centuryDigit%2 == 0, nil
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// companyICO completes seven digits into an IČO with certs' check digit, so the sandbox and
// the certificate checks agree on what a valid IČO is.
func companyICO(first7 string) string {
	return first7 + strconv.Itoa(certs.ICOCheckDigit(first7))
}

// czechAccountNumber completes nine digits into a domestic account number that passes the
// ČNB modulo-11 check (weights 6,3,7,9,10,5,8,4,2,1), stepping the digits when no last digit
// can.
func czechAccountNumber(first9 string) string {
	weights := [9]int{6, 3, 7, 9, 10, 5, 8, 4, 2}
	n, _ := strconv.Atoi(first9)
	for ; ; n++ {
		digits := fmt.Sprintf("%09d", n)
		sum := 0
		for i, w := range weights {
			sum += int(digits[i]-'0') * w
		}
		if last := (11 - sum%11) % 11; last != 10 {
			return digits + strconv.Itoa(last)
		}
	}
}

// czechIBAN builds CZkk + bank code + six-digit prefix + ten-digit number with the ISO 13616
// check digits.
func czechIBAN(bankCode, prefix, number string) string {
	bban := fmt.Sprintf("%s%06s%010s", bankCode, prefix, number)
	// Letters become two digits (C=12, Z=35) and move behind the BBAN with check digits 00.
	n, _ := new(big.Int).SetString(bban+"123500", 10)
	check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("CZ%02d%s", check, bban)
}

// livenessVideo returns a few KiB standing in for a liveness recording: an MP4 file-type box
// so players and sniffers see video/mp4, then bytes derived from the session id so the same
// session always downloads the same video.
func livenessVideo(sessionID string) []byte {
	const size = 4096
	video := make([]byte, 0, size)
	video = append(video, 0, 0, 0, 0x18)
	video = append(video, "ftypmp42"...)
	video = append(video, 0, 0, 0, 0)
	video = append(video, "mp42isom"...)
	var counter [8]byte
	for i := uint64(0); len(video) < size; i++ {
		binary.BigEndian.PutUint64(counter[:], i)
		block := sha256.Sum256(append([]byte(sessionID), counter[:]...))
		video = append(video, block[:]...)
	}
	return video[:size]
}
