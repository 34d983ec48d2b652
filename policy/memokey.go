package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"time"
)

// keyOf is memo.key(in.value()) without building the value: the same bytes
// digested, written straight from the struct, so a remembered decision costs
// no maps. A test holds the two to the same bytes for random inputs. When the
// memo keys on stand-ins, the personal values are written as stand-ins
// (standin.go) and ok is false for a call that must be evaluated.
func (mo *memo) keyOf(in *Input) (k [sha256.Size]byte, ok bool) {
	if mo.off != "" {
		return k, false
	}
	ok = true
	buf := keyBuffers.Get().(*[]byte)
	b := (*buf)[:0]
	if mo.all {
		b = binary.AppendUvarint(append(b, tagObject), uint64(len(inputNames)))
		for _, name := range inputNames {
			b = in.appendNamed(appendString(b, name), name)
		}
	} else {
		for _, name := range mo.reads {
			b = appendString(b, name)
			if !mo.anyUser || !personalInput[name] {
				b = in.appendNamed(b, name)
				continue
			}
			if b, ok = in.appendStandIn(b, name); !ok {
				break
			}
		}
	}
	if ok {
		k = sha256.Sum256(b)
	}
	*buf = b
	keyBuffers.Put(buf)
	return k, ok
}

// inputNames are the top-level keys of Input.value, sorted.
var inputNames = []string{"app", "body", "class", "consent", "consent_id", "erasure", "fields", "method", "now",
	"operation", "path", "purpose", "quota", "request", "vendor"}

// appendNamed writes the canonical encoding of input.<name> (appendCanonical
// of Input.value's entry), or tagAbsent for a name the input does not have.
func (in *Input) appendNamed(b []byte, name string) []byte {
	str := func(s string) []byte { return appendString(append(b, tagString), s) }
	switch name {
	case "app":
		b = binary.AppendUvarint(append(b, tagObject), 3)
		b = appendString(append(appendString(b, "id"), tagString), in.App.ID)
		b = appendString(append(appendString(b, "role"), tagString), in.App.Role)
		return appendString(append(appendString(b, "uri"), tagString), in.App.URI)
	case "body":
		return str(in.Body)
	case "class":
		return str(in.Class)
	case "consent":
		return in.appendConsent(b)
	case "consent_id":
		return str(in.ConsentID)
	case "erasure":
		return appendBool(b, in.Erasure)
	case "fields":
		b = binary.AppendUvarint(append(b, tagObject), 3)
		b = appendStrings(appendString(b, "identifiers"), in.Identifiers)
		b = appendStringMap(appendString(b, "request"), in.RequestFields)
		return appendStringMap(appendString(b, "response"), in.ResponseFields)
	case "method":
		return str(in.Method)
	case "now":
		return appendTime(append(b, tagString), in.Now)
	case "operation":
		return str(in.Operation)
	case "path":
		return str(in.Path)
	case "purpose":
		return str(in.Purpose)
	case "quota":
		b = binary.AppendUvarint(append(b, tagObject), 2)
		b = appendBool(appendString(b, "known"), in.QuotaKnown)
		return appendString(append(appendString(b, "remaining"), tagNumber), strconv.Itoa(in.QuotaRemaining))
	case "request":
		b = binary.AppendUvarint(append(b, tagObject), 2)
		b = appendStrings(appendString(b, "fields"), in.Present)
		return appendStrings(appendString(b, "reveals"), in.Reveals)
	case "vendor":
		return str(in.Vendor)
	}
	return append(b, tagAbsent)
}

func (in *Input) appendConsent(b []byte) []byte {
	c := in.Consent
	if c == nil {
		return append(b, tagNull)
	}
	b = binary.AppendUvarint(append(b, tagObject), 9)
	field := func(b []byte, k, v string) []byte { return appendString(append(appendString(b, k), tagString), v) }
	b = field(b, "app", c.App)
	b = appendStrings(appendString(b, "categories"), c.Categories)
	b = appendTime(append(appendString(b, "expires_at"), tagString), c.ExpiresAt)
	b = appendTime(append(appendString(b, "granted_at"), tagString), c.GrantedAt)
	b = field(b, "id", c.ID)
	b = appendStrings(appendString(b, "purposes"), c.Purposes)
	b = field(b, "status", c.Status)
	b = field(b, "subject", c.Subject)
	return appendStrings(appendString(b, "vendors"), c.Vendors)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, tagTrue)
	}
	return append(b, tagFalse)
}

func appendStrings(b []byte, s []string) []byte {
	b = binary.AppendUvarint(append(b, tagArray), uint64(len(s)))
	for _, e := range s {
		b = appendString(append(b, tagString), e)
	}
	return b
}

// appendStringMap writes m as an object with sorted keys; the keys are sorted
// in a pooled slice, so a field map costs no allocation.
func appendStringMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(append(b, tagObject), uint64(len(m)))
	kp := keySlices.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(append(appendString(b, k), tagString), m[k])
	}
	*kp = keys[:0]
	keySlices.Put(kp)
	return b
}

var keySlices = sync.Pool{New: func() any { s := make([]string, 0, 64); return &s }}

// appendTime writes t as Input.value does (UTC, RFC 3339), length first,
// formatted in place.
func appendTime(b []byte, t time.Time) []byte {
	var tmp [40]byte
	f := t.UTC().AppendFormat(tmp[:0], time.RFC3339)
	return append(binary.AppendUvarint(b, uint64(len(f))), f...)
}
