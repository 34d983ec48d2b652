package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Search calls fn, in log order, with every record of the log at dbPath (its sealed
// segments, then the file, each opened read-only) whose SubjectHMAC or one of whose
// Identifiers equals identifierHMAC, as computed by HMAC with the gateway's key. It
// stops at fn's first error and returns it. It does not verify the log: run
// VerifyFiles for that.
func Search(ctx context.Context, dbPath string, identifierHMAC string, fn func(Record) error) error {
	want, err := searchTerm(identifierHMAC)
	if err != nil {
		return err
	}
	paths, err := Files(dbPath)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := searchFile(ctx, p, want, fn); err != nil {
			return err
		}
	}
	return nil
}

func searchFile(ctx context.Context, path string, want term, fn func(Record) error) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if _, err := readMeta(tx); err != nil {
			return fmt.Errorf("searching %s: %w", path, err)
		}
		c := tx.Bucket(bucketRecords).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := searchLine(v, want, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// SearchExport is Search over an export read from r. Elided stubs carry no identifiers
// and never match. It does not verify the export: run Verify for that.
func SearchExport(r io.Reader, identifierHMAC string, fn func(Record) error) error {
	return SearchExportTerms(r, []string{identifierHMAC}, fn)
}

// SearchExportTerms is SearchExport for records that hold any of the terms: the
// forms one HMAC takes in a log with link keys (LinkTerms).
func SearchExportTerms(r io.Reader, terms []string, fn func(Record) error) error {
	want, err := searchTerms(terms)
	if err != nil {
		return err
	}
	lr := newLineReader(r)
	if _, err := lr.next(); err != nil {
		return fmt.Errorf("reading audit export header: %w", err)
	}
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading audit export: %w", err)
		}
		if err := searchLine(line, want, fn); err != nil {
			return err
		}
	}
}

// searchTerm checks that what is searched for is an HMAC: a raw identifier would find
// nothing, and would have been typed into a tool that may log its arguments.
func searchTerm(h string) (term, error) {
	return searchTerms([]string{h})
}

func searchTerms(hs []string) (term, error) {
	t := term{set: map[string]bool{}}
	for _, h := range hs {
		h = strings.ToLower(strings.TrimSpace(h))
		if !IsHMAC(h) {
			return term{}, fmt.Errorf("%w: search term must be an identifier's HMAC (64 hex digits), see audit.HMAC", ErrInvalid)
		}
		t.set[h] = true
		if len(hs) <= maxScanTerms {
			t.scan = append(t.scan, []byte(h))
		}
	}
	return t, nil
}

// maxScanTerms is how many terms are looked for in a line's bytes before it is
// decoded; with more (a person's identifier under every link key) every line with
// a subject or identifiers is decoded.
const maxScanTerms = 16

// term is what is searched for: the HMACs, and, when few, the same as bytes to
// scan stored lines with.
type term struct {
	set  map[string]bool
	scan [][]byte
}

var (
	subjectMember     = []byte(`"subject_hmac":`)
	identifiersMember = []byte(`"identifiers":`)
)

// mayMatch skips lines cheaply: a 64-digit hex string does not occur by chance, so
// almost every line is skipped undecoded.
func (t term) mayMatch(line []byte) bool {
	if t.scan == nil {
		return bytes.Contains(line, subjectMember) || bytes.Contains(line, identifiersMember)
	}
	for _, b := range t.scan {
		if bytes.Contains(line, b) {
			return true
		}
	}
	return false
}

func searchLine(line []byte, want term, fn func(Record) error) error {
	if !want.mayMatch(line) {
		return nil
	}
	r := lenient(line)
	if r.Kind == KindCheckpoint || r.Kind == KindElided {
		return nil
	}
	if want.set[r.SubjectHMAC] || slices.ContainsFunc(r.Identifiers, func(id string) bool { return want.set[id] }) {
		return fn(r)
	}
	return nil
}
