// Package audit is consentgate's append-only, tamper-evident audit log: one bbolt file,
// records hash-chained and written by group commit, signed checkpoints, and the
// export, verification and search auditors run offline. It never sees a raw identifier.
//
// # Basics
//
// Open a file with a signing key, Append records, Close. Append is called from many
// goroutines; one writer goroutine gives each record its sequence number, time and
// hash, and commits a whole batch in one bbolt transaction (one fsync), so the cost of
// durability is shared by everyone who waited for that commit. In strict mode (the
// default) Append returns once its record is on disk; if the batch cannot be written
// every caller of it gets an error wrapping ErrUnavailable, Healthy reports it, and the
// gateway must not make the call it wanted to record.
//
// The file holds two buckets: "records", the canonical line of each record under its
// big-endian sequence number (1, 2, …), and "meta", written once at creation: format,
// log id (a UUID), node, public key and its fingerprint. Nothing updates or deletes a
// record.
//
// # Records and the chain
//
// A record's canonical form is the JSON object of its members in the order Record
// declares them, empty optional members left out, no white space, detail keys sorted,
// time in RFC 3339 UTC with nanoseconds and no trailing zeros, and strings escaped only
// where JSON must (`"`, `\`, and bytes below 0x20 as \u00xx; everything else is UTF-8 as
// it is). hash = SHA-256(raw bytes of prev_hash || canonical form without prev_hash and
// hash), as 64 lowercase hex digits; record 1's prev_hash is
// SHA-256("consentgate audit log v1\n" + log id). The stored line, and an export line,
// is the canonical form with prev_hash and hash last; readers refuse any line that is
// not byte for byte the canonical encoding of what it decodes to.
//
// # Segments
//
// With SegmentBytes or SegmentAge set, the writer seals the active file when it is
// that big or its first record that old: it writes a checkpoint, prepares the next
// file holding that same checkpoint as its first record, and moves the sealed file
// to SegmentDir as <first>-<last>.db. The sealing checkpoint carries detail seals
// "true" and signs "consentgate audit seal v1\n" + the rest of the head message,
// so a chain may start only there, never at an ordinary checkpoint. Every file so
// verifies alone from a signed statement (Report.Start), consecutive files share
// one record, and VerifyFiles,
// ExportFiles and Search read a log's files as one chain and name a missing or
// altered segment. Readers of the running log (Lines, Tail, Export) find records
// in sealed segments; package archive moves old segments off the node.
//
// # Link keys
//
// With LinkRetention set, Append names a record's end user only through a random
// key of theirs, in a file beside the log (LinkKeysPath): subject_hmac becomes
// HMAC(key, subject HMAC), each identifier HMAC(key, identifier HMAC). LinkTerms
// gives the forms to search for; ForgetLinkKeys destroys the keys of people no
// record has named for LinkRetention, after which their records still verify but
// cannot be tied to them.
//
// # Checkpoints
//
// A checkpoint is a record of kind "checkpoint" in the same chain, written after every
// CheckpointEvery records, when CheckpointInterval passes with records not yet covered,
// on Checkpoint, and at Close. Its detail carries head_seq and head_hash (the record just
// before it, which it must chain to), log_id, and signature, in hex: Ed25519 (or ECDSA
// P-256 over its SHA-256, ASN.1 DER, for a key in an HSM that has no Ed25519) over
// "consentgate audit head v1\n" + log id + "\n" + head_seq + "\n" + head_hash + "\n" +
// the checkpoint's time as its record spells it. Being in the chain, a checkpoint cannot be removed or
// moved without breaking it, and it vouches for every record before it: rewriting one
// and re-hashing the rest needs a new signature at the next checkpoint.
//
// # Exports and verification
//
// An export is JSONL: a header (format, log id, node, public key, partial, filter, the
// time, and the head: sequence number and hash of the last record), then every record
// up to that head. Export signs the whole header, head included, at export time, so an
// export cut short, added to, or with any header field changed fails. ExportFile, which
// has no key, takes the last checkpoint's signed statement as the head instead; its
// other header fields are not signed, and records after that checkpoint are exported
// but unvouched. A filtered export keeps the records outside the filter as stubs of
// seq, kind "elided", prev_hash and hash, so the chain and the head still verify; its
// header says partial.
//
// Verify (an export) and VerifyDB (a file) report the first bad record as a
// *VerifyError: a changed byte, a gap, a reordering, a broken link, a bad or missing
// checkpoint signature, or an export cut short of its signed head. Records after the
// last checkpoint are reported, not failed (Report.Unvouched): a crash leaves them
// behind. A file the gateway closed cleanly ends with a checkpoint, so pass
// RequireVouched to fail on them; pass an Anchor (a head kept from an earlier export,
// or a checkpoint the gateway logged) to detect a file cut back to exactly a checkpoint,
// which nothing inside the file can reveal.
//
// # Caveats
//
//   - One process opens a file (bbolt's flock); a second Open, and ExportFile, VerifyDB
//     and Search on a file a gateway has open, fail with ErrLocked after a second. Use
//     Snapshot, Export, or a stopped gateway's file.
//   - Append ignores its context's cancellation: a record once handed over is written or
//     refused, and the caller learns which.
//   - Async mode loses what is queued at a crash and reports write failures only to the
//     logger and Healthy. It is not compliance-grade.
//   - Group commit never delays a lone caller: the writer waits (at most MaxDelay) only
//     for callers already inside Append, and batches fill by themselves while the
//     previous one is being fsync'd.
//   - bbolt's commit fsyncs twice (data, then meta page); Stats.Batches counts commits.
//   - The signing key is fixed for the life of a file (Open refuses another): rotating
//     it means starting a new file, whose log id differs.
//   - Whoever can write the file can cut it back to a checkpoint or append unsigned
//     records to it; only RequireVouched, an Anchor, and the checkpoints the gateway logs
//     elsewhere reveal that.
package audit
