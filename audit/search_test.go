package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSearch(t *testing.T) {
	o := testOptions(t)
	l, path := MustOpen(t, o)
	subject := HMAC(testHMACKey, "user-7")
	birth := HMAC(testHMACKey, testBirthNumber)
	other := HMAC(testHMACKey, "user-8")
	for _, r := range []Record{
		{Kind: KindIntent, RequestID: "a", SubjectHMAC: subject},
		{Kind: KindOutcome, RequestID: "a", SubjectHMAC: subject, Identifiers: []string{birth}},
		{Kind: KindIntent, RequestID: "b", SubjectHMAC: other},
		{Kind: KindOutcome, RequestID: "b", SubjectHMAC: other, Identifiers: []string{other, birth}},
		{Kind: KindConsent, ConsentID: "c1", SubjectHMAC: other},
	} {
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var export bytes.Buffer
	if err := l.Export(context.Background(), &export, Filter{}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Nothing raw ever reached the file or the export.
	raw, _ := os.ReadFile(path)
	for _, b := range [][]byte{raw, export.Bytes()} {
		if bytes.Contains(b, []byte(testBirthNumber)) || bytes.Contains(b, []byte("9157144238")) || bytes.Contains(b, []byte("user-7")) {
			t.Error("a raw identifier is in the file or the export")
		}
	}

	for _, tt := range []struct {
		hmac string
		want []uint64
	}{
		{subject, []uint64{1, 2}},
		{birth, []uint64{2, 4}},
		{other, []uint64{3, 4, 5}},
		{strings.ToUpper(birth), []uint64{2, 4}}, // typed in upper case
		{HMAC(testHMACKey, "nobody"), nil},
		{HMAC([]byte("another key, 32 bytes or longer!"), testBirthNumber), nil},
	} {
		var fromDB, fromExport []uint64
		err := Search(context.Background(), path, tt.hmac, func(r Record) error {
			fromDB = append(fromDB, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = SearchExport(bytes.NewReader(export.Bytes()), tt.hmac, func(r Record) error {
			fromExport = append(fromExport, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fromDB, tt.want) || !slices.Equal(fromExport, tt.want) {
			t.Errorf("search %s…: file %v, export %v, want %v", tt.hmac[:8], fromDB, fromExport, tt.want)
		}
	}
}

func TestSearchStopsAtCallbackError(t *testing.T) {
	l, path := MustOpen(t, testOptions(t))
	subject := HMAC(testHMACKey, "user-1")
	for range 3 {
		l.Append(context.Background(), Record{Kind: KindIntent, SubjectHMAC: subject})
	}
	l.Close()
	stop := errors.New("enough")
	calls := 0
	err := Search(context.Background(), path, subject, func(Record) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls", err, calls)
	}
}

// A raw identifier typed where its HMAC belongs is refused, not searched for.
func TestSearchRefusesRawIdentifiers(t *testing.T) {
	path, _ := closedLog(t, 1, 1000)
	for _, term := range []string{testBirthNumber, "", "user-7", HMAC(testHMACKey, "x")[:63]} {
		err := Search(context.Background(), path, term, func(Record) error { return nil })
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Search(%q): %v, want ErrInvalid", term, err)
		}
		if err != nil && term != "" && strings.Contains(err.Error(), term) {
			t.Errorf("the error quotes the term: %v", err)
		}
		if err := SearchExport(strings.NewReader(""), term, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("SearchExport(%q): %v", term, err)
		}
	}
}
