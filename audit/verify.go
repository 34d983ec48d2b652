package audit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Report is what a verification found. It is filled as far as the log verified, also
// when Verify or VerifyDB return an error.
type Report struct {
	LogID string
	// Records counts the records verified in full, checkpoints and elided stubs not
	// included; Checkpoints the checkpoints, whose signatures all verified; Elided the
	// stubs of a filtered export.
	Records, Checkpoints, Elided int
	// First and Last are the times of the first and last record verified in full.
	First, Last time.Time
	// Incomplete lists, in log order, the request ids of intents with no outcome: calls
	// in flight when the log was read, calls cut off by a crash, or, in a filtered
	// export, outcomes the filter elided.
	Incomplete []string
	// Partial is set for a filtered export: records outside the filter are stubs.
	Partial bool
	// Unvouched counts the records after the last checkpoint (in an export, after the
	// last checkpoint or the export's signed head, whichever is later), starting at
	// FirstUnvouched. Nothing signed covers them: they are what a crash leaves behind,
	// but also what a truncation to before the last checkpoint, or records appended by
	// someone without the key, look like. They fail verification only if asked
	// (RequireVouched); a live log's snapshot always has some.
	Unvouched      int
	FirstUnvouched uint64
	// Head is the last record: its sequence number and hash (the time only if it was
	// present in full). An auditor can keep it and pass it as an Anchor later.
	Head Head
	// Start is the first record verified: 1, or, for a log whose older segments were
	// archived or deleted, the signed checkpoint it continues from (0: no records).
	Start uint64
}

// A VerifyOption makes Verify or VerifyDB stricter.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	requireVouched bool
	anchors        []Head
	pace           func() // called every paceEvery records of a file
	bytesOnly      bool   // stored records checked by their bytes (ByBytes)
}

// ByBytes checks a file's records by their stored bytes: each one's hash over its
// body, its sequence number and its link to the one before, decoding only the
// checkpoints, whose signatures are checked as always. Any changed byte still
// changes a hash, and any rewritten chain still fails at the next signature, so a
// file proves as much; it costs a fraction of the full check, which also decodes
// every record and demands its canonical form. The report's times and Incomplete
// are left empty. The retention policy checks segments so before they leave.
func ByBytes() VerifyOption {
	return func(c *verifyConfig) { c.bytesOnly = true }
}

const paceEvery = 512

// Pace calls fn every few hundred records VerifyDB and VerifyFiles read: a
// background check (the retention policy's) sleeps in it so as to use only a
// share of the CPU the gateway's calls need.
func Pace(fn func()) VerifyOption {
	return func(c *verifyConfig) { c.pace = fn }
}

// RequireVouched makes records no checkpoint covers (Report.Unvouched) a failure, named
// at the first of them. Use it on a file the gateway closed cleanly (Close writes a
// final checkpoint): then the only way to have such records is a truncation or an
// insertion.
func RequireVouched() VerifyOption {
	return func(c *verifyConfig) { c.requireVouched = true }
}

// Anchor requires the log to contain record h.Seq with hash h.Hash: a head known from
// outside the file (an earlier export's Report.Head, a checkpoint the gateway logged).
// It is the only way to detect a file cut back to exactly a checkpoint, since what is
// left is a complete, signed log.
func Anchor(h Head) VerifyOption {
	return func(c *verifyConfig) { c.anchors = append(c.anchors, h) }
}

// VerifyDB verifies a log file, opened read-only (it fails with ErrLocked while a
// gateway has it open: verify a snapshot). Every record must decode to its canonical
// form, hash to its hash, follow the record before it in sequence and in the chain, and
// every checkpoint must be signed by pub. A file that starts at a checkpoint after
// record 1 (a segment, or the active file after a rotation) is verified from that
// signed statement on (Report.Start). The error for a log that fails is a
// *VerifyError naming the first bad record. Records after the last checkpoint are
// counted in Report.Unvouched and fail only with RequireVouched.
func VerifyDB(path string, pub PublicKey, opts ...VerifyOption) (Report, error) {
	return VerifyFiles([]string{path}, pub, opts...)
}

// VerifyFiles verifies a log held in several files, given in log order (Files lists
// a log's local ones; archived segments go before them): one chain across them,
// each file continuing the one before from the checkpoint that sealed it. A segment
// missing between two others, or one that does not continue the chain, is named in
// the *VerifyError (File).
func VerifyFiles(paths []string, pub PublicKey, opts ...VerifyOption) (Report, error) {
	vk, err := keyOf(pub)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: need the log's public key: %w", err)
	}
	if len(paths) == 0 {
		return Report{}, errors.New("audit verify: no file given")
	}
	cfg := verifyConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	var c *chain
	for _, p := range paths {
		if err := verifyFile(p, vk, cfg, &c); err != nil {
			var verr *VerifyError
			if errors.As(err, &verr) && len(paths) > 1 {
				verr.File = p
			}
			return reportOf(c), err
		}
	}
	if verr := c.finish(); verr != nil {
		return c.rep, verr
	}
	return c.rep, nil
}

func reportOf(c *chain) Report {
	if c == nil {
		return Report{}
	}
	return c.rep
}

// verifyFile adds the records of one file to the chain *c, starting it if nil.
func verifyFile(path string, vk key, cfg verifyConfig, c **chain) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		m, err := readMeta(tx)
		if err != nil {
			return fmt.Errorf("verifying %s: %w", path, err)
		}
		if *c == nil {
			*c = newChain(vk, m.logID, cfg)
		} else if m.logID != (*c).logID {
			return &VerifyError{Seq: (*c).next, Reason: fmt.Sprintf("a file of another log (%s, not %s)", m.logID, (*c).logID)}
		}
		if m.pub.raw != nil && !bytes.Equal(m.pub.raw, vk.raw) {
			(*c).keyHint = fmt.Sprintf(" (the file names another key, fingerprint %s)", m.pub.fingerprint())
		}
		if verr := namedRange(tx, filepath.Base(path)); verr != nil {
			return verr
		}
		return (*c).addFile(tx)
	})
}

// namedRange checks a segment's records against its name: a segment cut at either
// end to one of its checkpoints would otherwise pass for a shorter one.
func namedRange(tx *bolt.Tx, name string) *VerifyError {
	first, last, ok := ParseSegmentName(name)
	if !ok {
		return nil
	}
	c := tx.Bucket(bucketRecords).Cursor()
	k1, _ := c.First()
	k2, _ := c.Last()
	if seqOf(k1) != first || seqOf(k2) != last {
		return &VerifyError{Seq: first, Reason: fmt.Sprintf("the segment's name says records %d to %d, it holds %d to %d", first, last, seqOf(k1), seqOf(k2))}
	}
	return nil
}

// Verify verifies an export read from r, as Export and ExportFile write it, against
// the log's public key (which the auditor must hold from elsewhere: the key the export
// names is only used to explain a mismatch). Besides what VerifyDB checks, the header
// must be canonical and its signature and signed head must verify, and the export must
// reach its signed head: a cut-off export fails at the first missing record. Stubs of
// a filtered export are followed by their hashes. The error for an export that fails
// is a *VerifyError; Seq 0 means the header.
func Verify(r io.Reader, pub PublicKey, opts ...VerifyOption) (Report, error) {
	vk, err := keyOf(pub)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: need the log's public key: %w", err)
	}
	cfg := verifyConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	lr := newLineReader(r)
	line, err := lr.next()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, errPartialLine) || errors.Is(err, errLongLine) {
			return Report{}, &VerifyError{Reason: "no export header line: " + err.Error()}
		}
		return Report{}, fmt.Errorf("reading audit export: %w", err)
	}
	h, verr := parseHeader(line)
	if verr != nil {
		return Report{}, verr
	}
	c := newChain(vk, h.LogID, cfg)
	c.rep.Partial = h.Partial
	if verr := c.header(&h); verr != nil {
		return c.rep, verr
	}
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errPartialLine) || errors.Is(err, errLongLine) {
			return c.rep, &VerifyError{Seq: c.next, Reason: err.Error() + " (export cut off or changed)"}
		}
		if err != nil {
			return c.rep, fmt.Errorf("reading audit export: %w", err)
		}
		rec, stub, err := parseLine(line)
		if err != nil {
			return c.rep, &VerifyError{Seq: c.next, Reason: err.Error()}
		}
		if stub && !h.Partial {
			return c.rep, &VerifyError{Seq: c.next, Reason: "elided record in an export whose header says it is complete"}
		}
		if c.rep.Start == 0 && h.Start > 1 {
			if rec.Seq != h.Start {
				return c.rep, &VerifyError{Seq: h.Start, Reason: fmt.Sprintf("the export's header says it starts at record %d, but its first record is %d", h.Start, rec.Seq)}
			}
			c.begin(&rec)
		}
		want := c.next
		if verr := c.add(&rec, stub, func(found uint64) string { return lr.misplaced(want, found) }); verr != nil {
			return c.rep, verr
		}
	}
	if verr := c.finish(); verr != nil {
		return c.rep, verr
	}
	return c.rep, nil
}

// chain follows records in sequence order, checking each against the one before it.
type chain struct {
	pub     key
	logID   string
	cfg     verifyConfig
	keyHint string // explains signature failures: the file or export names another key

	next    uint64 // sequence number the next record must have
	prev    string // the hash it must chain to
	limited bool   // no record may follow limit:
	limit   uint64 // a signed export ends at its head
	vouched uint64 // the export's signed head vouches for the records up to here
	lastCP  uint64 // sequence number of the last checkpoint
	marks   map[uint64][]mark
	intents map[string]uint64
	rep     Report
	body    []byte // addBytes's buffer
}

// mark is a record the chain must pass through with the given hash.
type mark struct {
	hash, what string
}

func newChain(pub key, logID string, cfg verifyConfig) *chain {
	c := &chain{pub: pub, logID: logID, cfg: cfg, next: 1, prev: genesis(logID),
		marks: map[uint64][]mark{}, intents: map[string]uint64{}}
	c.rep.LogID = logID
	c.rep.Head = Head{Hash: c.prev}
	for _, a := range cfg.anchors {
		c.marks[a.Seq] = append(c.marks[a.Seq], mark{hash: a.Hash, what: "the anchor"})
	}
	return c
}

// header checks an export's header against the key and sets the marks it implies.
func (c *chain) header(h *exportHeader) *VerifyError {
	if h.PublicKey != c.pub.hex() {
		c.keyHint = " (the export names another key)"
		if named, err := keyFromRaw(mustHex(h.PublicKey)); err == nil {
			c.keyHint = fmt.Sprintf(" (the export names another key, fingerprint %s)", named.fingerprint())
		}
	}
	hd := h.Head
	switch {
	case hd == nil || hd.Signature == "" && h.Signature == "":
		// Then nothing ties the export to the key: any log id, any records would do.
		return &VerifyError{Reason: "nothing in the export is signed: no header signature and no signed head " +
			"(exported offline from a file without a checkpoint? open and close it with the gateway to add one)"}
	case h.Signature != "" && hd.Signature != "":
		return &VerifyError{Reason: "both the header and its head carry a signature"}
	case h.Signature != "":
		// Export: the header signature covers the head, which is where the export ends.
		if !c.pub.verify(h.signedMessage(), h.Signature) {
			return &VerifyError{Reason: "header signature does not verify under the given public key" + c.keyHint}
		}
		c.limited, c.limit = true, hd.Seq
	default:
		// ExportFile: the head is the last checkpoint's statement; records after it are
		// in the export but unvouched.
		if !c.pub.verify(headMessage(c.logID, hd.Seq, hd.Hash, hd.Time), hd.Signature) {
			return &VerifyError{Reason: "signed head does not verify under the given public key" + c.keyHint}
		}
	}
	c.marks[hd.Seq] = append(c.marks[hd.Seq], mark{hash: hd.Hash, what: "the export's signed head"})
	c.vouched = hd.Seq
	// A mark at 0 is the empty log: its head is the genesis hash.
	for _, m := range c.marks[0] {
		if m.hash != c.prev {
			return &VerifyError{Reason: fmt.Sprintf("%s is not the empty log of %s", m.what, c.logID)}
		}
	}
	return nil
}

// addFile checks the records of a file in order. A file whose first record is a
// checkpoint after record 1 continues a sealed segment: the chain starts there, at a
// statement the key signed, if nothing came before it.
func (c *chain) addFile(tx *bolt.Tx) error {
	cur := tx.Bucket(bucketRecords).Cursor()
	k, v := cur.First()
	switch at := seqOf(k); {
	case k == nil:
	case c.rep.Start == 0 && c.next == 1:
		if r, stub, err := parseLine(v); err == nil && !stub {
			c.begin(&r)
		}
	case at > c.next:
		return &VerifyError{Seq: c.next, Reason: fmt.Sprintf("missing segment: records %d to %d are in no file given", c.next, at-1)}
	case at+1 == c.next && c.repeatsLast(v):
		k, v = cur.Next() // the checkpoint the segment before ended with
	case at+1 == c.next:
		return &VerifyError{Seq: at, Reason: "does not continue the segment before: its first record is not the checkpoint that one ended with"}
	}
	for n := 1; k != nil; k, v = cur.Next() {
		if verr := c.addStored(k, v); verr != nil {
			return verr
		}
		if n++; c.cfg.pace != nil && n%paceEvery == 0 {
			c.cfg.pace()
		}
	}
	return nil
}

// repeatsLast reports whether v is, intact, the record the chain ended with: a
// segment starts with the checkpoint that sealed the one before it.
func (c *chain) repeatsLast(v []byte) bool {
	r, stub, err := parseLine(v)
	if err != nil || stub || r.Hash != c.prev {
		return false
	}
	prev, ok := decodeHash(r.PrevHash)
	sum := chainHash(prev, recordBody(nil, &r))
	return ok && hex.EncodeToString(sum[:]) == r.Hash
}

// begin starts the chain at r, which must be a checkpoint after record 1 that sealed
// a segment (its signature, over sealMessage, is checked as the chain adds it); else
// the chain starts at genesis as usual, and a missing record 1 is reported as a gap.
func (c *chain) begin(r *Record) {
	if r.Seq > 1 && r.Kind == KindCheckpoint && r.Detail[DetailSeals] == "true" {
		c.next, c.prev = r.Seq, r.PrevHash
	}
}

// addStored checks a record of a file, under its bbolt key.
func (c *chain) addStored(k, v []byte) *VerifyError {
	if len(k) != 8 {
		return &VerifyError{Seq: c.next, Reason: fmt.Sprintf("malformed key %x after record %d", k, c.next-1)}
	}
	at := binary.BigEndian.Uint64(k)
	if at < c.next {
		return &VerifyError{Seq: c.next, Reason: fmt.Sprintf("reordered: sequence number %d stored after record %d", at, c.next-1)}
	}
	if at > c.next {
		return &VerifyError{Seq: c.next, Reason: fmt.Sprintf("gap: no record stored under sequence number %d (the next is %d)", c.next, at)}
	}
	if c.cfg.bytesOnly && !bytes.Contains(v, checkpointKind) {
		return c.addBytes(at, v)
	}
	r, stub, err := parseLine(v)
	if err != nil {
		return &VerifyError{Seq: at, Reason: err.Error()}
	}
	if stub {
		return &VerifyError{Seq: at, Reason: "an elided stub stored in the file"}
	}
	return c.add(&r, false, func(found uint64) string {
		return fmt.Sprintf("reordered: sequence number %d holds record %d", at, found)
	})
}

var (
	checkpointKind = []byte(`"kind":"checkpoint"`)
	prevMember     = []byte(`,"prev_hash":"`)
	hashMember     = []byte(`","hash":"`)
)

// storedSuffix is the length of what a stored line adds to its body: prev_hash and
// hash, then the closing brace.
const storedSuffix = 14 + 64 + 10 + 64 + 2

// addBytes checks the stored line v of record at (not a checkpoint) by its bytes:
// it must start with its own sequence number, end with prev_hash and hash, link to
// the record before and hash to its hash. A record whose bytes were changed to
// hide that it is a checkpoint fails too: the next signature covers the chain.
func (c *chain) addBytes(at uint64, v []byte) *VerifyError {
	fail := func(reason string) *VerifyError { return &VerifyError{Seq: at, Reason: reason} }
	seq := strconv.AppendUint([]byte(`{"seq":`), at, 10)
	n := len(v) - storedSuffix
	if n < len(seq) || !bytes.HasPrefix(v, append(seq, ',')) || !bytes.Equal(v[n:n+14], prevMember) ||
		!bytes.Equal(v[n+78:n+88], hashMember) || !bytes.Equal(v[len(v)-2:], []byte(`"}`)) {
		return fail("not a stored record of this sequence number (changed after it was written)")
	}
	prevHex, hashHex := string(v[n+14:n+78]), string(v[n+88:n+152])
	prev, ok := decodeHash(prevHex)
	if !ok || !isHex(hashHex, 64) {
		return fail("prev_hash or hash is not 64 lowercase hex digits")
	}
	c.body = append(append(c.body[:0], v[:n]...), '}')
	if sum := chainHash(prev, c.body); hex.EncodeToString(sum[:]) != hashHex {
		return fail("hash mismatch: the record was changed after it was written")
	}
	if prevHex != c.prev {
		return fail(fmt.Sprintf("chain broken: prev_hash is not the hash of record %d (a record was inserted, replaced or rewritten)", at-1))
	}
	for _, m := range c.marks[at] {
		if m.hash != hashHex {
			return fail("hash differs from " + m.what + "'s")
		}
	}
	if c.rep.Start == 0 {
		c.rep.Start = at
	}
	c.rep.Records++
	c.rep.Head = Head{Seq: at, Hash: hashHex}
	c.prev = hashHex
	c.next++
	return nil
}

// add checks r, which stands where record c.next must be. misplaced explains a record
// whose own sequence number is another.
func (c *chain) add(r *Record, stub bool, misplaced func(found uint64) string) *VerifyError {
	at := c.next
	fail := func(format string, a ...any) *VerifyError {
		return &VerifyError{Seq: at, Reason: fmt.Sprintf(format, a...)}
	}
	if c.limited && at > c.limit {
		return fail("record after the export's signed head (record %d): added to the export", c.limit)
	}
	if !isHex(r.Hash, 64) {
		return fail("hash is not 64 lowercase hex digits")
	}
	// The record's own hash first: a changed byte (its seq included) is reported as
	// what it is, not as the disorder it may also cause.
	if !stub {
		prev, ok := decodeHash(r.PrevHash)
		if !ok {
			return fail("prev_hash is not 64 lowercase hex digits")
		}
		if sum := chainHash(prev, recordBody(nil, r)); hex.EncodeToString(sum[:]) != r.Hash {
			return fail("hash mismatch: the record was changed after it was written")
		}
	}
	if r.Seq != at {
		return fail("%s", misplaced(r.Seq))
	}
	if r.PrevHash != c.prev {
		if at == 1 {
			return fail("does not chain to log id %s (a record of another log, or the log id was changed)", c.logID)
		}
		return fail("chain broken: prev_hash is not the hash of record %d (a record was inserted, replaced or rewritten)", at-1)
	}
	for _, m := range c.marks[at] {
		if m.hash != r.Hash {
			return fail("hash differs from %s's", m.what)
		}
	}
	switch {
	case stub:
		c.rep.Elided++
	case r.Kind == KindCheckpoint:
		if reason := c.checkpoint(r); reason != "" {
			return fail("%s", reason)
		}
		c.lastCP = at
		c.rep.Checkpoints++
	default:
		c.rep.Records++
		if c.rep.First.IsZero() {
			c.rep.First = r.Time
		}
		c.rep.Last = r.Time
		switch {
		case r.RequestID == "":
		case r.Kind == KindIntent:
			c.intents[r.RequestID] = at
		case r.Kind == KindOutcome:
			delete(c.intents, r.RequestID)
		}
	}
	if c.rep.Start == 0 {
		c.rep.Start = at
		for seq, ms := range c.marks {
			if seq > 0 && seq < at {
				return fail("the log starts at signed checkpoint %d, but %s is record %d (history pruned past it)", at, ms[0].what, seq)
			}
		}
	}
	c.rep.Head = Head{Seq: at, Hash: r.Hash}
	if !stub {
		c.rep.Head.Time = r.Time
	}
	c.prev = r.Hash
	c.next++
	return nil
}

// checkpoint checks a checkpoint record's statement and signature; "" means it holds.
func (c *chain) checkpoint(r *Record) string {
	d := r.Detail
	at := r.Seq
	switch {
	case d[DetailSignature] == "":
		return "checkpoint without a signature"
	case d[DetailHeadSeq] != strconv.FormatUint(at-1, 10):
		return fmt.Sprintf("checkpoint covers record %q, not the record before it (%d)", d[DetailHeadSeq], at-1)
	case d[DetailHeadHash] != r.PrevHash:
		return fmt.Sprintf("checkpoint's head_hash is not the hash of record %d", at-1)
	case d[DetailLogID] != c.logID:
		return fmt.Sprintf("checkpoint of another log (%q)", d[DetailLogID])
	case d[DetailSeals] != "" && d[DetailSeals] != "true":
		return fmt.Sprintf("checkpoint's seals is %q", d[DetailSeals])
	case d[DetailSeals] == "" && !c.pub.verify(headMessage(c.logID, at-1, r.PrevHash, r.Time), d[DetailSignature]),
		d[DetailSeals] == "true" && !c.pub.verify(sealMessage(c.logID, at-1, r.PrevHash, r.Time), d[DetailSignature]):
		return "bad checkpoint signature: not made by the given public key (forged checkpoint, or another key)" + c.keyHint
	}
	return ""
}

// finish checks what can only be checked at the end and completes the report.
func (c *chain) finish() *VerifyError {
	last := c.next - 1
	for _, seq := range slices.Sorted(maps.Keys(c.marks)) {
		if seq > last {
			return &VerifyError{Seq: last + 1, Reason: fmt.Sprintf("truncated: the log ends at record %d, but %s is record %d",
				last, c.marks[seq][0].what, seq)}
		}
	}
	vouched := max(c.lastCP, c.vouched)
	if last > vouched {
		c.rep.Unvouched = int(last - vouched)
		c.rep.FirstUnvouched = vouched + 1
	}
	open := slices.SortedFunc(maps.Keys(c.intents), func(a, b string) int { return cmp.Compare(c.intents[a], c.intents[b]) })
	c.rep.Incomplete = open
	if c.cfg.requireVouched && c.rep.Unvouched > 0 {
		return &VerifyError{Seq: c.rep.FirstUnvouched, Reason: fmt.Sprintf(
			"records %d to %d are not covered by a signed checkpoint (the log was not closed cleanly, cut back, or added to without the key)",
			c.rep.FirstUnvouched, last)}
	}
	return nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
