package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/audit"
)

// auditSource is where `audit report` and `audit search` read records from: a
// log file, an export, or a running gateway's log, verified against the public
// key before anything is read from it, unless --unverified says otherwise.
type auditSource struct {
	db, export, pubkey string
	unverified         bool
	admin              exportFlags
	archive            archiveFlags
}

func (s *auditSource) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&s.db, "db", "", "audit.db file (not in use by a running gateway); its sealed segments are read too")
	fl.StringVar(&s.export, "export", "", "export file (JSONL)")
	fl.StringVar(&s.pubkey, "pubkey", "", "public key PEM the records must verify with (consentgate audit pubkey)")
	fl.BoolVar(&s.unverified, "unverified", false, "read records that were not verified, and say so in every result")
	s.archive.flags(cmd)
}

// open verifies the source (a stream from the gateway is first kept in a
// temporary file) and returns it to read from the start. A source that does
// not verify is an error, never a quiet result.
func (s *auditSource) open(ctx context.Context) (io.ReadCloser, error) {
	if (s.db != "") == (s.export != "") && s.admin.admin == "" || s.db != "" && s.export != "" {
		return nil, errors.New("give exactly one of --db, --export or --admin")
	}
	if s.db != "" {
		files, done, err := s.archive.files(ctx, s.db)
		if err != nil {
			return nil, err
		}
		if err := s.verify(func(pub audit.PublicKey) error { _, err := audit.VerifyFiles(files, pub); return err }); err != nil {
			done()
			return nil, err
		}
		return readCloser{audit.ExportReader(ctx, files, audit.Filter{}), done}, nil
	}
	if s.archive.set() {
		return nil, errNotWithExport
	}
	var f *os.File
	var err error
	if s.export != "" {
		f, err = os.Open(s.export)
	} else {
		f, err = s.fromAdmin(ctx)
	}
	if err != nil {
		return nil, err
	}
	err = s.verify(func(pub audit.PublicKey) error { _, err := audit.Verify(f, pub); return err })
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fromAdmin keeps the gateway's export in a temporary file, removed once open.
func (s *auditSource) fromAdmin(ctx context.Context) (*os.File, error) {
	f, err := os.CreateTemp("", "consentgate-audit-*.jsonl")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if err := exportFromAdmin(ctx, s.admin, f); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s *auditSource) verify(check func(pub audit.PublicKey) error) error {
	if s.unverified {
		return nil
	}
	if s.pubkey == "" {
		return errors.New("--pubkey is required: the records are verified before they are read (--unverified reads them anyway and says so)")
	}
	raw, err := os.ReadFile(s.pubkey)
	if err != nil {
		return err
	}
	pub, err := audit.ParsePublicKeyPEM(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", s.pubkey, err)
	}
	if err := check(pub); err != nil {
		return fmt.Errorf("the records do not verify, so nothing was read from them: %w (consentgate audit verify says more; --unverified reads them anyway)", err)
	}
	return nil
}

// readCloser runs done once the reader is closed: the fetched archive goes.
type readCloser struct {
	io.ReadCloser
	done func()
}

func (r readCloser) Close() error {
	err := r.ReadCloser.Close()
	r.done()
	return err
}
