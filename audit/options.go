package audit

import (
	"cmp"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Modes of Append.
const (
	// ModeStrict: Append returns once the record is committed and fsync'd. The only mode
	// fit for compliance: a record Append confirmed survives a crash.
	ModeStrict = "strict"
	// ModeAsync: Append returns once the record is queued. A crash loses what was queued
	// and a failed write reaches only the log and Healthy, never the caller. Not
	// compliance-grade; for load tests and non-regulated deployments.
	ModeAsync = "async"
)

// Options configure a Log. Zero values are documented per field.
type Options struct {
	// Node names this gateway instance in every record. Empty: the host name.
	Node string
	// Mode is ModeStrict or ModeAsync. Empty: ModeStrict.
	Mode string
	// BatchSize is the most records one transaction (one fsync) takes. Zero: 256.
	BatchSize int
	// MaxDelay bounds how long the writer, once it holds one record, waits for callers
	// already inside Append to hand theirs over and share the commit. It never waits for
	// callers that have not arrived, so a lone caller's record is committed at once.
	// Zero: 1ms; negative: no wait, write whatever has queued up.
	MaxDelay time.Duration
	// CheckpointEvery is how many records a checkpoint follows at most. Zero: 1000.
	CheckpointEvery int
	// CheckpointInterval is how long records wait at most for a checkpoint. Zero: 10s.
	CheckpointInterval time.Duration
	// SigningKey signs checkpoints and exports: an ed25519.PrivateKey, or an ECDSA P-256
	// key (in an HSM, say). Required. The log remembers its public key and refuses another
	// (ErrWrongKey): a new key means a new log file.
	SigningKey crypto.Signer
	// SignTimeout bounds how long a checkpoint waits for its signature (a key in
	// an HSM that hangs); the records behind it wait no longer. Zero: 2s.
	SignTimeout time.Duration
	// Logger receives open, checkpoint, close and failure events. Nil: discard.
	Logger *slog.Logger
	// Now is the clock records are stamped with. Nil: time.Now.
	Now func() time.Time
	// ReserveBytes is the free space on the log's file system that only records
	// of disclosures may use (see InReserve). Zero: 256 MiB; negative: none.
	ReserveBytes int64
	// SegmentBytes seals the active file into a segment (see SegmentDir) once it
	// holds this many bytes; SegmentAge once its first record is this old. Zero:
	// never.
	SegmentBytes int64
	SegmentAge   time.Duration
	// LinkRetention turns on link keys (see LinkKeysPath): records name a person
	// only through a key of theirs, destroyed once no record has named them for
	// this long. Zero: records carry the subject and identifier HMACs as given.
	LinkRetention time.Duration
}

const (
	defaultBatchSize          = 256
	defaultMaxDelay           = time.Millisecond
	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = 10 * time.Second
	defaultReserveBytes       = 256 << 20
	defaultSignTimeout        = 2 * time.Second
)

// newLog validates the options and builds a Log without a file.
func newLog(o Options) (*Log, error) {
	if k, ok := o.SigningKey.(ed25519.PrivateKey); o.SigningKey == nil || ok && len(k) != ed25519.PrivateKeySize {
		return nil, errors.New("audit log: no signing key, or an Ed25519 key of the wrong length")
	}
	pub, err := keyOf(o.SigningKey.Public())
	if err != nil {
		return nil, fmt.Errorf("audit log: signing key: %w", err)
	}
	l := &Log{
		key:           o.SigningKey,
		pub:           pub,
		node:          o.Node,
		batchSize:     o.BatchSize,
		maxDelay:      o.MaxDelay,
		cpEvery:       o.CheckpointEvery,
		cpInterval:    o.CheckpointInterval,
		signTimeout:   cmp.Or(o.SignTimeout, defaultSignTimeout),
		now:           o.Now,
		segBytes:      o.SegmentBytes,
		segAge:        o.SegmentAge,
		linkRetention: o.LinkRetention,
		log:           o.Logger,
	}
	switch o.Mode {
	case "", ModeStrict:
		l.strict = true
	case ModeAsync:
	default:
		return nil, fmt.Errorf("audit log: mode %q (want %q or %q)", o.Mode, ModeStrict, ModeAsync)
	}
	if l.batchSize < 0 || l.cpEvery < 0 || l.cpInterval < 0 {
		return nil, fmt.Errorf("audit log: batch size, checkpoint every and checkpoint interval must not be negative")
	}
	if l.batchSize == 0 {
		l.batchSize = defaultBatchSize
	}
	if l.maxDelay == 0 {
		l.maxDelay = defaultMaxDelay
	}
	if l.cpEvery == 0 {
		l.cpEvery = defaultCheckpointEvery
	}
	if l.cpInterval == 0 {
		l.cpInterval = defaultCheckpointInterval
	}
	if l.node == "" {
		l.node, _ = os.Hostname()
		if l.node == "" {
			l.node = "unknown"
		}
	}
	switch {
	case o.ReserveBytes == 0:
		l.reserve.bytes = defaultReserveBytes
	case o.ReserveBytes > 0:
		l.reserve.bytes = o.ReserveBytes
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}
