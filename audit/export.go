package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Filter selects the records an export carries in full. Zero fields select everything;
// set fields must all match. Checkpoints are always carried in full.
type Filter struct {
	From    time.Time `json:"from,omitzero"` // records at or after
	To      time.Time `json:"to,omitzero"`   // records before
	Vendor  string    `json:"vendor,omitempty"`
	App     string    `json:"app,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	Consent string    `json:"consent,omitempty"` // consent id
}

func (f Filter) isZero() bool { return f == Filter{} }

func (f Filter) match(r *Record) bool {
	return f.inWindow(r.Time) &&
		(f.Vendor == "" || r.Vendor == f.Vendor) &&
		(f.App == "" || r.App == f.App) &&
		(f.Purpose == "" || r.Purpose == f.Purpose) &&
		(f.Consent == "" || r.ConsentID == f.Consent)
}

// inWindow reports whether t is at or after From and before To.
func (f Filter) inWindow(t time.Time) bool {
	return (f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || t.Before(f.To))
}

func (f Filter) encode() []byte {
	o := jsonObject{}
	o.optTime("from", f.From)
	o.optTime("to", f.To)
	o.optStr("vendor", f.Vendor)
	o.optStr("app", f.App)
	o.optStr("purpose", f.Purpose)
	o.optStr("consent", f.Consent)
	return o.close()
}

// exportFormat names the export format in its header.
const exportFormat = "consentgate-audit-export/1"

// exportHeader is the first line of an export.
type exportHeader struct {
	Format     string    `json:"format"`
	LogID      string    `json:"log_id"`
	Node       string    `json:"node"`
	PublicKey  string    `json:"public_key"` // hex of the key's raw bytes
	Partial    bool      `json:"partial"`
	Filter     Filter    `json:"filter"`
	ExportedAt time.Time `json:"exported_at"`
	// Start is the first record's sequence number when it is not 1: the signed
	// checkpoint a log whose older segments were pruned continues from.
	Start     uint64      `json:"start,omitempty"`
	Head      *signedHead `json:"head,omitempty"`
	Signature string      `json:"signature,omitempty"` // over signedMessage; none from ExportFile
}

// signedHead states that the log reached record Seq with hash Hash as of Time. Export
// signs it with the rest of the header and leaves Signature empty; ExportFile, without
// the key, copies the last checkpoint's statement and its Signature (see headMessage).
// So an export has exactly one signature over its head, and stripping the header's
// leaves a head nobody signed.
type signedHead struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature,omitempty"`
}

func (h *exportHeader) encode(withSignature bool) []byte {
	o := jsonObject{}
	o.str("format", h.Format)
	o.str("log_id", h.LogID)
	o.str("node", h.Node)
	o.str("public_key", h.PublicKey)
	o.bool("partial", h.Partial)
	o.key("filter")
	o.b = append(o.b, h.Filter.encode()...)
	o.time("exported_at", h.ExportedAt)
	if h.Start > 1 {
		o.uint("start", h.Start)
	}
	if hd := h.Head; hd != nil {
		o.key("head")
		in := jsonObject{b: o.b}
		in.uint("seq", hd.Seq)
		in.str("hash", hd.Hash)
		in.time("time", hd.Time)
		in.optStr("signature", hd.Signature)
		o.b = in.close()
	}
	if withSignature {
		o.optStr("signature", h.Signature)
	}
	return o.close()
}

// signedMessage is what the header's signature covers: every member but itself.
func (h *exportHeader) signedMessage() []byte {
	return append([]byte("consentgate audit export header v1\n"), h.encode(false)...)
}

// parseHeader decodes an export's first line; like parseLine it refuses any spelling
// but the canonical one.
func parseHeader(line []byte) (exportHeader, *VerifyError) {
	var h exportHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return h, &VerifyError{Reason: fmt.Sprintf("not an export header: %v", err)}
	}
	if h.Format != exportFormat {
		return h, &VerifyError{Reason: fmt.Sprintf("format %q, want %q", h.Format, exportFormat)}
	}
	if !bytes.Equal(h.encode(true), line) {
		return h, &VerifyError{Reason: "header not in canonical form (changed after export)"}
	}
	if !isKeyHex(h.PublicKey) {
		return h, &VerifyError{Reason: "public_key is not 64 or 130 lowercase hex digits"}
	}
	if h.Head != nil && !isHex(h.Head.Hash, 64) {
		return h, &VerifyError{Reason: "head hash is not 64 lowercase hex digits"}
	}
	return h, nil
}

// exportSource is a log, as the files that hold it in log order, and what an export
// of it needs to know.
type exportSource struct {
	files []viewFunc
	meta  meta
	key   crypto.Signer // nil: the header is not signed (ExportFiles)
	now   func() time.Time
}

// viewFunc runs fn in a read transaction of one file of a log.
type viewFunc func(fn func(*bolt.Tx) error) error

// Export writes the log as JSONL: a header line, then every record on this node up to
// the head as of the call (its sealed segments, then the active file), in order, each
// line exactly as stored. With a filter, records outside it are stubs (seq, kind
// "elided", prev_hash, hash) and the header says partial. The header, head and start
// included, is signed now, so a cut-off export fails Verify.
// Records are read in short transactions, so a large export never holds the file
// against the writer.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) error {
	return l.ExportWithArchived(ctx, w, f, nil)
}

// ExportWithArchived is Export with the log's archived history before it:
// archived are segment files of this log that have left the node (named as
// sealed, <first>-<last>.db, in log order); those that are still on the node
// are left out. The export is one chain from the first archived record.
func (l *Log) ExportWithArchived(ctx context.Context, w io.Writer, f Filter, archived []string) error {
	if l.isClosed() {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	l.dbMu.RLock()
	first := l.segFirst
	segs, err := Segments(l.segDir)
	l.dbMu.RUnlock()
	if err != nil {
		return err
	}
	// The archived segments that have left the node: those before its oldest.
	oldest := oldestOf(first, segs)
	var before []string
	for _, p := range archived {
		if from, _, ok := ParseSegmentName(filepath.Base(p)); ok && from < oldest {
			before = append(before, p)
		}
	}
	files, _, closeAll, err := openChain(before, l.id)
	defer closeAll()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s.First < first {
			files = append(files, func(fn func(*bolt.Tx) error) error { return viewSegment(l.segDir, s.First, first, fn) })
		}
	}
	// Read where the active file's first record is: after a rotation that is a segment.
	files = append(files, func(fn func(*bolt.Tx) error) error { return l.viewAt(first, fn) })
	return export(ctx, w, f, exportSource{files: files, meta: meta{logID: l.id, node: l.node, pub: l.pub}, key: l.key, now: l.now})
}

// OldestOnNode is the first record still on this node: what an archive holds
// the history before.
func (l *Log) OldestOnNode() (uint64, error) {
	l.dbMu.RLock()
	first := l.segFirst
	l.dbMu.RUnlock()
	segs, err := Segments(l.segDir)
	return oldestOf(first, segs), err
}

// oldestOf is the first record of a log whose active file starts at first,
// with sealed segments segs (in log order).
func oldestOf(first uint64, segs []Segment) uint64 {
	if len(segs) > 0 {
		return min(first, segs[0].First)
	}
	return first
}

// ExportFile exports a log file, opened read-only, as Export does (it fails with
// ErrLocked while a gateway has it open: export a snapshot). Without the signing key
// the header is not signed; its head is the last checkpoint's signed statement, and
// records after that checkpoint are exported but unvouched (Report.Unvouched).
func ExportFile(ctx context.Context, dbPath string, w io.Writer, f Filter) error {
	return ExportFiles(ctx, []string{dbPath}, w, f)
}

// ExportFiles is ExportFile of a log held in several files (Files: its segments and
// the active file), given in log order.
func ExportFiles(ctx context.Context, paths []string, w io.Writer, f Filter) error {
	files, m, closeAll, err := openChain(paths, "")
	defer closeAll()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("exporting: %w: no file given", ErrNotLog)
	}
	if m.pub.raw == nil {
		return fmt.Errorf("exporting %s: %w: no public key", paths[len(paths)-1], ErrNotLog)
	}
	return export(ctx, w, f, exportSource{files: files, meta: m, now: time.Now})
}

// openChain opens the files of one log read-only, in log order: logID, or
// with "" the first file's. closeAll closes what was opened, also on error.
func openChain(paths []string, logID string) (files []viewFunc, m meta, closeAll func(), err error) {
	var dbs []*bolt.DB
	closeAll = func() {
		for _, db := range dbs {
			db.Close()
		}
	}
	for _, p := range paths {
		db, err := openReadOnly(p)
		if err != nil {
			return nil, m, closeAll, err
		}
		dbs = append(dbs, db)
		var fm meta
		if err := db.View(func(tx *bolt.Tx) error {
			fm, err = readMeta(tx)
			return err
		}); err != nil {
			return nil, m, closeAll, fmt.Errorf("exporting %s: %w", p, err)
		}
		if logID != "" && fm.logID != logID {
			return nil, m, closeAll, fmt.Errorf("exporting %s: %w: a file of another log (%s, not %s)", p, ErrNotLog, fm.logID, logID)
		}
		logID, m = fm.logID, fm
		files = append(files, db.View)
	}
	return files, m, closeAll, nil
}

// exportChunk is how many records one read transaction covers. A long read transaction
// would keep the writer from growing the file (bbolt remaps under an exclusive lock).
const exportChunk = 1024

func export(ctx context.Context, w io.Writer, f Filter, src exportSource) error {
	h, lastKey, err := headerOf(f, src)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(h.encode(true))
	bw.WriteByte('\n')
	if lastKey != nil {
		if err := exportRecords(ctx, bw, f, src, lastKey); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing audit export: %w", err)
	}
	return nil
}

// headerOf is the export's header, signed when the log's key is at hand (else
// it carries the last checkpoint's signed head), and the key of the last
// record it covers (nil: none); records appended during the export are not in it.
func headerOf(f Filter, src exportSource) (exportHeader, []byte, error) {
	h := exportHeader{
		Format:     exportFormat,
		LogID:      src.meta.logID,
		Node:       src.meta.node,
		PublicKey:  src.meta.pub.hex(),
		Partial:    !f.isZero(),
		Filter:     f,
		ExportedAt: src.now().UTC().Round(0),
	}
	err := src.files[0](func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return ErrNotLog
		}
		if k, _ := b.Cursor().First(); k != nil {
			h.Start = seqOf(k)
		}
		return nil
	})
	if err != nil {
		return h, nil, fmt.Errorf("exporting audit log: %w", err)
	}
	var lastKey []byte // the head's key: records appended during the export are not in it
	head := Head{Hash: genesis(h.LogID)}
	for i := len(src.files) - 1; i >= 0 && (h.Head == nil || lastKey == nil); i-- {
		err := src.files[i](func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			if b == nil {
				return ErrNotLog
			}
			c := b.Cursor()
			k, v := c.Last()
			if k != nil && lastKey == nil {
				lastKey = bytes.Clone(k)
				head = Head{Seq: seqOf(k), Hash: lenient(v).Hash}
			}
			if src.key != nil {
				return nil
			}
			for ; k != nil; k, v = c.Prev() {
				if r := lenient(v); r.Kind == KindCheckpoint {
					seq, _ := strconv.ParseUint(r.Detail[DetailHeadSeq], 10, 64)
					h.Head = &signedHead{Seq: seq, Hash: r.Detail[DetailHeadHash], Time: r.Time, Signature: r.Detail[DetailSignature]}
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return h, nil, fmt.Errorf("exporting audit log: %w", err)
		}
		if src.key != nil {
			break
		}
	}
	if src.key != nil {
		h.Head = &signedHead{Seq: head.Seq, Hash: head.Hash, Time: h.ExportedAt}
		if h.Signature, err = sign(src.key, h.signedMessage()); err != nil {
			return h, nil, fmt.Errorf("exporting audit log: %w", err)
		}
	}
	return h, lastKey, nil
}

// exportRecords writes every record up to lastKey, file after file, a chunk of them
// per read transaction: a long one would keep the writer from growing the file
// (bbolt remaps under an exclusive lock). A file after the first starts after the
// record the one before ended with (the checkpoint both hold).
func exportRecords(ctx context.Context, bw *bufio.Writer, f Filter, src exportSource, lastKey []byte) error {
	var lines []byte
	var lastSeq uint64
	for i, file := range src.files {
		// from is where the next transaction starts: the key after the last one exported
		// (appending a zero byte gives the least key greater than it), so even a file with
		// malformed keys is walked once, in order.
		from := []byte{}
		if i > 0 {
			from = seqKey(lastSeq + 1)
		}
		for fileDone := false; !fileDone; {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Lines are copied out of the transaction and written after it ends, so a slow
			// reader of the export does not hold the transaction open either.
			lines = lines[:0]
			end := false
			err := file(func(tx *bolt.Tx) error {
				c := tx.Bucket(bucketRecords).Cursor()
				n := 0
				k, v := c.Seek(from)
				for ; k != nil && n < exportChunk && bytes.Compare(k, lastKey) <= 0; k, v = c.Next() {
					lines = appendExportLine(lines, v, f)
					lines = append(lines, '\n')
					from = append(append(from[:0], k...), 0)
					lastSeq = max(lastSeq, seqOf(k))
					n++
				}
				end = k != nil && bytes.Compare(k, lastKey) > 0
				fileDone = k == nil || end
				return nil
			})
			if err != nil {
				return fmt.Errorf("exporting audit log: %w", err)
			}
			if _, err := bw.Write(lines); err != nil {
				return fmt.Errorf("writing audit export: %w", err)
			}
			if end {
				return nil
			}
		}
	}
	return nil
}

// appendExportLine appends the stored line v as it is, or its stub if the filter
// leaves it out. A line that does not decode is exported as it is, for Verify to name.
func appendExportLine(b, v []byte, f Filter) []byte {
	if f.isZero() {
		return append(b, v...)
	}
	var r Record
	if json.Unmarshal(v, &r) != nil || r.Kind == KindCheckpoint || f.match(&r) {
		return append(b, v...)
	}
	return stubLine(b, r.Seq, r.PrevHash, r.Hash)
}

// lenient decodes what it can of a stored record: exporting a damaged file must still
// work, so that Verify of the export can say what is wrong.
func lenient(v []byte) Record {
	var r Record
	json.Unmarshal(v, &r)
	return r
}

// seqOf reads a key; a malformed one (only a damaged file has it) reads as 0.
func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// maxLine bounds one line of an export, so a corrupt export cannot exhaust memory.
const maxLine = 16 << 20

var (
	errPartialLine = errors.New("last line has no newline")
	errLongLine    = errors.New("line longer than 16 MiB")
)

// lineReader reads an export's lines. bufio.Scanner is not used: it drops a "\r"
// before the newline, and a changed byte must never go unseen.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline; it is valid until the next call.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.r.ReadSlice('\n')
		lr.buf = append(lr.buf, frag...)
		if len(lr.buf) > maxLine {
			return nil, errLongLine
		}
		switch {
		case err == nil:
			return lr.buf[:len(lr.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF) && len(lr.buf) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, errPartialLine
		default:
			return nil, err
		}
	}
}

// misplaced explains finding record found where want belongs, reading ahead to tell a
// reordering (want comes later) from a gap (it never does). It consumes the reader:
// verification stops here anyway.
func (lr *lineReader) misplaced(want, found uint64) string {
	if found < want {
		return fmt.Sprintf("reordered or repeated: record %d appears again after record %d", found, want-1)
	}
	for {
		line, err := lr.next()
		if err != nil {
			break
		}
		var s struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(line, &s) == nil && s.Seq == want {
			return fmt.Sprintf("reordered: record %d comes before record %d", found, want)
		}
	}
	return fmt.Sprintf("gap: record %d is missing (the next is record %d)", want, found)
}

// ExportReader is ExportFiles as a stream to read, for tools that consume an
// export (report, replay) straight from a file; an export error surfaces as the
// reader's error.
func ExportReader(ctx context.Context, paths []string, f Filter) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(ExportFiles(ctx, paths, pw, f)) }()
	return pr
}
