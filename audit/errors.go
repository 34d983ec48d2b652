package audit

import (
	"errors"
	"fmt"
)

var (
	// ErrUnavailable means the log did not store the record: it is closed, or the write
	// failed. The caller must treat the audited action as unrecorded and not perform it.
	ErrUnavailable = errors.New("audit log unavailable")
	// ErrLocked means another process has the log file open.
	ErrLocked = errors.New("audit log is in use by another process")
	// ErrInvalid means a record breaks a rule (unknown kind, an identifier that is not an
	// HMAC); nothing was written.
	ErrInvalid = errors.New("invalid audit record")
	// ErrWrongKey means the signing key is not the one the log was created with: its
	// checkpoints would verify under two keys, so one of them would fail.
	ErrWrongKey = errors.New("signing key differs from the one the audit log was created with")
	// ErrCorrupt means Open found that the records after the last checkpoint do not
	// verify; appending to them would vouch for them with the next checkpoint.
	ErrCorrupt = errors.New("audit log is corrupt")
	// ErrNotLog means a file or stream is not an audit log or export of this format.
	ErrNotLog = errors.New("not a consentgate audit log")
	// ErrPruned means records asked for have left this node: their segment was
	// archived and deleted under the retention policy.
	ErrPruned = errors.New("audit records pruned from this node")
	// ErrVerify is what every *VerifyError wraps, so callers can test for "the log was
	// read and does not verify" apart from "the log could not be read".
	ErrVerify = errors.New("audit log does not verify")
)

// VerifyError names the first record that fails verification and why. Seq 0 means the
// export as a whole (its header) rather than one record.
type VerifyError struct {
	Seq    uint64
	Reason string
	// File is the segment or file the record is in, when several were verified.
	File string
}

func (e *VerifyError) Error() string {
	in := ""
	if e.File != "" {
		in = " in " + e.File
	}
	if e.Seq == 0 {
		return fmt.Sprintf("%s: export header%s: %s", ErrVerify, in, e.Reason)
	}
	return fmt.Sprintf("%s: record %d%s: %s", ErrVerify, e.Seq, in, e.Reason)
}

func (e *VerifyError) Unwrap() error { return ErrVerify }

// ErrNoRecord means a sequence number asked for is beyond the head.
var ErrNoRecord = errors.New("no such audit record")
