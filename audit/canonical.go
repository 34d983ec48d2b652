package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The canonical encoding is hand-written rather than encoding/json's so that the bytes a
// hash covers are fixed by this file alone (doc.go states the rules), not by a library
// version: a log must verify for as long as it is kept.

const hexDigits = "0123456789abcdef"

// jsonObject appends the members of one JSON object, in the order they are added.
type jsonObject struct {
	b []byte
	n int
}

func (o *jsonObject) key(k string) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendString(o.b, v)
}

func (o *jsonObject) optStr(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObject) uint(k string, v uint64) {
	o.key(k)
	o.b = strconv.AppendUint(o.b, v, 10)
}

func (o *jsonObject) optInt(k string, v int64) {
	if v != 0 {
		o.key(k)
		o.b = strconv.AppendInt(o.b, v, 10)
	}
}

func (o *jsonObject) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObject) time(k string, t time.Time) {
	o.key(k)
	o.b = append(o.b, '"')
	o.b = t.UTC().AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
}

func (o *jsonObject) optTime(k string, t time.Time) {
	if !t.IsZero() {
		o.time(k, t)
	}
}

func (o *jsonObject) optStrings(k string, ss []string) {
	if len(ss) == 0 {
		return
	}
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range ss {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendString(o.b, s)
	}
	o.b = append(o.b, ']')
}

func (o *jsonObject) optMap(k string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	o.key(k)
	inner := jsonObject{b: o.b}
	for _, mk := range slices.Sorted(maps.Keys(m)) {
		inner.str(mk, m[mk])
	}
	o.b = inner.close()
}

// close ends the object and returns its bytes.
func (o *jsonObject) close() []byte {
	if o.n == 0 {
		o.b = append(o.b, '{')
	}
	return append(o.b, '}')
}

// appendString quotes s: `"` and `\` get a backslash, bytes below 0x20 become \u00xx,
// everything else (valid UTF-8, as prepareRecord ensures) is copied as it is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		if c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// recordBody is canonical(record): every member but prev_hash and hash, the bytes a
// record's hash covers.
func recordBody(b []byte, r *Record) []byte {
	o := jsonObject{b: b}
	recordMembers(&o, r)
	return o.close()
}

// recordLine is the stored (and exported) form: the body with prev_hash and hash last.
func recordLine(b []byte, r *Record) []byte {
	o := jsonObject{b: b}
	recordMembers(&o, r)
	o.str("prev_hash", r.PrevHash)
	o.str("hash", r.Hash)
	return o.close()
}

func recordMembers(o *jsonObject, r *Record) {
	o.uint("seq", r.Seq)
	o.time("time", r.Time)
	o.str("node", r.Node)
	o.str("kind", r.Kind)
	o.optStr("request_id", r.RequestID)
	o.optStr("decision_id", r.DecisionID)
	o.optStr("policy_revision", r.PolicyRevision)
	o.optStr("app", r.App)
	o.optStr("vendor", r.Vendor)
	o.optStr("operation", r.Operation)
	o.optStr("method", r.Method)
	o.optStr("path_template", r.PathTemplate)
	o.optStr("consent_id", r.ConsentID)
	o.optStr("purpose", r.Purpose)
	o.optStr("subject_hmac", r.SubjectHMAC)
	o.optStrings("identifiers", r.Identifiers)
	if r.Allow != nil {
		o.bool("allow", *r.Allow)
	}
	o.optStrings("reasons", r.Reasons)
	o.optStrings("disclosed", r.Disclosed)
	o.optStrings("withheld", r.Withheld)
	o.optStrings("request_disclosed", r.RequestDisclosed)
	o.optStrings("request_withheld", r.RequestWithheld)
	o.optInt("status", int64(r.Status))
	o.optInt("latency_us", r.LatencyUS)
	o.optInt("bytes_in", r.BytesIn)
	o.optInt("bytes_out", r.BytesOut)
	o.optStr("error", r.Error)
	o.optMap("detail", r.Detail)
}

// stubLine is a record outside an export's filter: enough to follow the chain.
func stubLine(b []byte, seq uint64, prevHash, hash string) []byte {
	o := jsonObject{b: b}
	o.uint("seq", seq)
	o.str("kind", KindElided)
	o.str("prev_hash", prevHash)
	o.str("hash", hash)
	return o.close()
}

// chainHash is SHA-256(prev || body), prev being the previous hash's 32 raw bytes.
func chainHash(prev [32]byte, body []byte) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// genesisPrefix is hashed with the log id to give the prev_hash of record 1, so the
// first record of one log cannot be passed off as the first record of another.
const genesisPrefix = "consentgate audit log v1\n"

func genesis(logID string) string {
	sum := sha256.Sum256([]byte(genesisPrefix + logID))
	return hex.EncodeToString(sum[:])
}

// decodeHash turns a hash as stored (64 lowercase hex digits) into its raw bytes.
func decodeHash(s string) ([32]byte, bool) {
	var raw [32]byte
	if !isHex(s, 64) {
		return raw, false
	}
	_, err := hex.Decode(raw[:], []byte(s))
	return raw, err == nil
}

// parseLine decodes a stored value or an export line. It refuses any line that is not
// byte for byte the canonical encoding of what it decodes to: encoding/json forgives
// (key case, escapes, duplicate members, time zones), and every forgiven difference
// would be a change to the log that no hash notices.
func parseLine(line []byte) (r Record, stub bool, err error) {
	if err := json.Unmarshal(line, &r); err != nil {
		return Record{}, false, fmt.Errorf("not a JSON record: %w", err)
	}
	var again []byte
	if r.Kind == KindElided {
		stub = true
		again = stubLine(nil, r.Seq, r.PrevHash, r.Hash)
	} else {
		again = recordLine(nil, &r)
	}
	if !bytes.Equal(again, line) {
		return Record{}, false, fmt.Errorf("not in canonical form (changed after it was written)")
	}
	return r, stub, nil
}
