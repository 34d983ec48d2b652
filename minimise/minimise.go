package minimise

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/consentgate/consentgate/policy"
)

// ErrUnparsable means a body that must be minimised is not JSON: nothing of it
// may be passed on.
var ErrUnparsable = errors.New("body is not JSON and cannot be minimised")

// ActionKeepScalar keeps a value that is not an object or array. A request field
// is declared as a leaf: an app that puts an object there must not send what
// the object holds, which nobody declared.
const ActionKeepScalar = "keep-scalar"

// ActionKeepBool keeps true or false and withholds anything else: a verify
// mode's answer, which must not carry the record it was checked against.
const ActionKeepBool = "keep-bool"

// Minimiser applies a decision's field actions to a JSON document. Paths are dotted
// with [] for array elements; a path the decision does not name follows the
// default unless a longer named path lies below it, in which case the walk goes
// down to find it.
type Minimiser struct {
	fields   map[string]string
	def      string
	prefixes map[string]bool // every proper prefix of a named path
	hashKey  []byte
	now      time.Time

	// withheld and disclosed collect paths, repeated once per array element;
	// Minimise sorts them into sets.
	withheld  []string
	disclosed []string
	// path is the path of the value being walked, and keys the keys of the
	// objects around it, innermost last: both reused as the walk goes, so a
	// key costs no string unless its path is recorded.
	path []byte
	keys [][]byte
	// ambiguous is set by an object with a repeated key: parsers disagree on
	// which one counts, so such a body is refused rather than minimised.
	ambiguous bool
	// Identify names the paths whose values are identifiers auditors search by;
	// found collects those values (raw: the caller hashes them at once).
	Identify map[string]bool
	found    []string
	// Tokenize replaces a value under the tokenize action with a token (package
	// tokens); tokenized collects those paths, tokenErr the first failure,
	// which fails the whole document: a value is never passed for want of a token.
	Tokenize  func(path, value string) (string, error)
	tokenized []string
	tokenErr  error
}

// Result is what minimisation did, for the response header and the audit log.
type Result struct {
	Body        []byte
	Withheld    []string
	Disclosed   []string
	Tokenized   []string // withheld too: the app got tokens for their values
	Identifiers []string // raw values at the Identify paths: hash them at once
}

// New is a Minimiser for one document: fields maps paths to actions, def is
// the action for the rest (keep or, for anything else, drop), hashKey keys the
// hash action and now is the day ages are derived on.
func New(fields map[string]string, def string, hashKey []byte, now time.Time) *Minimiser {
	m := &Minimiser{fields: fields, def: def, prefixes: map[string]bool{}, hashKey: hashKey, now: now}
	for p := range fields {
		for i := 0; i < len(p); i++ {
			if p[i] == '.' || p[i] == '[' {
				m.prefixes[p[:i]] = true
			}
		}
	}
	if m.def != policy.ActionKeep {
		m.def = policy.ActionDrop
	}
	return m
}

// minimize rewrites a JSON body. An empty body stays empty. The body is
// validated once, then walked as bytes: dropped subtrees are skipped and kept
// ones copied without being decoded, which keeps vendor key order and number
// precision and costs a few microseconds per kilobyte.
func (m *Minimiser) Minimise(body []byte) (Result, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return Result{Body: body}, nil
	}
	if !json.Valid(b) {
		return Result{}, ErrUnparsable
	}
	out := bytes.NewBuffer(make([]byte, 0, len(b)))
	sc := scratches.Get().(*scratch)
	m.path, m.keys = sc.path[:0], sc.keys[:0]
	m.disclosed = make([]string, 0, len(m.fields))
	kept := m.value(out, b)
	clear(m.keys[:cap(m.keys)]) // they point into the body
	sc.path, sc.keys = m.path[:0], m.keys[:0]
	m.path, m.keys = nil, nil
	scratches.Put(sc)
	if m.ambiguous {
		return Result{}, fmt.Errorf("%w: an object repeats a key", ErrUnparsable)
	}
	if m.tokenErr != nil {
		return Result{}, m.tokenErr
	}
	if !kept {
		out.Reset()
		if b[0] == '[' {
			out.WriteString("[]")
		} else {
			out.WriteString("{}")
		}
	}
	return Result{Body: out.Bytes(), Withheld: sortedSet(m.withheld), Disclosed: sortedSet(m.disclosed),
		Tokenized: sortedSet(m.tokenized), Identifiers: m.found}, nil
}

// scratch is the path buffer and key stack of a walk, reused by the next one.
type scratch struct {
	path []byte
	keys [][]byte
}

var scratches = sync.Pool{New: func() any { return &scratch{path: make([]byte, 0, 256), keys: make([][]byte, 0, 64)} }}

// value writes what stays of the JSON value raw, found at m.path, and
// reports whether anything was written.
func (m *Minimiser) value(out *bytes.Buffer, raw []byte) bool {
	if action, ok := m.fields[string(m.path)]; ok {
		return m.apply(out, action, raw)
	}
	if (len(m.path) == 0 || m.prefixes[string(m.path)]) && (raw[0] == '{' || raw[0] == '[') {
		// A container emptied by minimisation is dropped too: an empty address
		// object would still tell that the vendor holds an address.
		mark := out.Len()
		var n int
		if raw[0] == '{' {
			n = m.object(out, raw)
		} else {
			n = m.array(out, raw)
		}
		if n == 0 && !emptyContainer(raw) {
			out.Truncate(mark)
			return false
		}
		return true
	}
	return m.apply(out, m.def, raw)
}

// here is m.path as a string, for the record.
func (m *Minimiser) here() string { return string(m.path) }

// object writes the kept members of the object raw and returns their number.
func (m *Minimiser) object(out *bytes.Buffer, raw []byte) int {
	out.WriteByte('{')
	n := 0
	var derived map[string]bool
	outer, base := len(m.keys), len(m.path)
	defer func() { m.keys, m.path = m.keys[:outer], m.path[:base] }()
	for i := skipSpace(raw, 1); raw[i] != '}'; {
		keyEnd := SkipString(raw, i)
		rawKey := raw[i:keyEnd]
		key := decodeKey(rawKey)
		if slices.ContainsFunc(m.keys[outer:], func(k []byte) bool { return bytes.Equal(k, key) }) {
			m.ambiguous = true
		}
		m.keys = append(m.keys, key)
		v := skipSpace(raw, skipSpace(raw, keyEnd)+1)
		next := skipValue(raw, v)
		m.path = m.path[:base]
		if base > 0 {
			m.path = append(m.path, '.')
		}
		m.path = append(m.path, key...)
		if m.Identify[string(m.path)] {
			if s, ok := ScalarString(scalarValue(raw[v:next])); ok && s != "" {
				m.found = append(m.found, s)
			}
		}
		action, named := m.fields[string(m.path)]
		switch {
		case len(key) == 0 || bytes.ContainsAny(key, ".[]"):
			// Such a key would read as a path to another field ("address.country"),
			// or as its parent: a decision cannot name it unambiguously, so it
			// never goes out.
			m.withheld = append(m.withheld, m.here())
		case named && strings.HasPrefix(action, "derive:age_over_"):
			fn := strings.TrimPrefix(action, "derive:")
			m.withheld = append(m.withheld, m.here())
			if over, ok := ageOver(scalarValue(raw[v:next]), fn, m.now); ok && !derived[fn] {
				if derived == nil {
					derived = map[string]bool{}
				}
				derived[fn] = true
				if n > 0 {
					out.WriteByte(',')
				}
				fmt.Fprintf(out, "%q:%t", fn, over)
				m.disclosed = append(m.disclosed, JoinPath(string(m.path[:base]), fn))
				n++
			}
		default:
			mark := out.Len()
			if n > 0 {
				out.WriteByte(',')
			}
			out.Write(rawKey)
			out.WriteByte(':')
			if m.value(out, raw[v:next]) {
				n++
			} else {
				out.Truncate(mark)
			}
		}
		i = skipSpace(raw, next)
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	out.WriteByte('}')
	return n
}

// array writes the kept elements of the array raw and returns their number.
func (m *Minimiser) array(out *bytes.Buffer, raw []byte) int {
	out.WriteByte('[')
	n := 0
	base := len(m.path)
	m.path = append(m.path, "[]"...) // every element's, restored by each walk below
	defer func() { m.path = m.path[:base] }()
	for i := skipSpace(raw, 1); raw[i] != ']'; {
		mark := out.Len()
		if n > 0 {
			out.WriteByte(',')
		}
		next := skipValue(raw, i)
		if m.value(out, raw[i:next]) {
			n++
		} else {
			out.Truncate(mark)
		}
		i = skipSpace(raw, next)
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	out.WriteByte(']')
	return n
}

func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// apply writes raw, found at m.path, transformed by action and reports
// whether anything was written.
func (m *Minimiser) apply(out *bytes.Buffer, action string, raw []byte) bool {
	switch action {
	case policy.ActionKeep:
		m.disclosed = append(m.disclosed, m.here())
		out.Write(raw)
		return true
	case ActionKeepBool:
		if s := string(raw); s == "true" || s == "false" {
			m.disclosed = append(m.disclosed, m.here())
			out.Write(raw)
			return true
		}
	case ActionKeepScalar:
		if raw[0] != '{' && raw[0] != '[' {
			m.disclosed = append(m.disclosed, m.here())
			out.Write(raw)
			return true
		}
	case policy.ActionMask:
		if s, ok := ScalarString(scalarValue(raw)); ok {
			m.transformed()
			writeString(out, mask(s))
			return true
		}
	case policy.ActionHash:
		if s, ok := ScalarString(scalarValue(raw)); ok {
			m.transformed()
			mac := hmac.New(sha256.New, m.hashKey)
			mac.Write([]byte(s))
			writeString(out, hex.EncodeToString(mac.Sum(nil)))
			return true
		}
	case policy.ActionTokenize:
		if s, ok := ScalarString(scalarValue(raw)); ok && m.tokenErr == nil {
			p := m.here()
			tok, err := m.tokenizeValue(p, s)
			if err != nil {
				m.tokenErr = err
				return false
			}
			m.withheld, m.tokenized = append(m.withheld, p), append(m.tokenized, p)
			writeString(out, tok)
			return true
		}
	case "derive:country_only":
		var obj map[string]any
		if raw[0] == '{' && json.Unmarshal(raw, &obj) == nil {
			if c, ok := obj["country"].(string); ok {
				m.transformed()
				writeString(out, c)
				return true
			}
		}
	case "derive:year_only":
		if y, ok := yearOf(scalarValue(raw)); ok {
			m.transformed()
			writeString(out, y)
			return true
		}
	case "derive:last4":
		if s, ok := ScalarString(scalarValue(raw)); ok && len(s) >= 4 {
			m.transformed()
			writeString(out, s[len(s)-4:])
			return true
		}
	}
	// drop, an action that does not fit the value, or an age derivation outside an
	// object: nothing of the value goes out.
	m.withheld = append(m.withheld, m.here())
	return false
}

// ErrNoTokens means a field is to be tokenized and no token vault is configured.
var ErrNoTokens = errors.New("the decision tokenizes a field but no token vault is configured")

func (m *Minimiser) tokenizeValue(path, value string) (string, error) {
	if m.Tokenize == nil {
		return "", ErrNoTokens
	}
	return m.Tokenize(path, value)
}

func (m *Minimiser) transformed() {
	p := m.here()
	m.withheld = append(m.withheld, p)
	m.disclosed = append(m.disclosed, p)
}

func ScalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// mask keeps the first two and last two characters and stars the rest, keeping
// the length; short values are starred whole.
func mask(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 4 {
		return strings.Repeat("*", n)
	}
	r := []rune(s)
	return string(r[:2]) + strings.Repeat("*", n-4) + string(r[n-2:])
}

// dottedDate is how Kazakh documents, and so Biometric.Vision, write dates:
// dd.mm.yyyy, zero-padded.
const dottedDate = "02.01.2006"

// birthDate reads a birth date from an ISO date, a dd.mm.yyyy date, an RFC 3339
// time, a unix time in milliseconds, or a Czech birth number. time.Parse checks
// the day against the month, so 31.02.1990 is no date.
func birthDate(v any) (time.Time, bool) {
	s, ok := ScalarString(v)
	if !ok {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(dottedDate, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if t, ok := czechBirthNumber(s); ok {
		return t, true
	}
	if _, isNum := v.(json.Number); isNum {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.UnixMilli(ms).UTC(), true
		}
	}
	return time.Time{}, false
}

// czechBirthNumber decodes YYMMDD[/]XXX(X): women have 50 added to the month, and
// from 2004 a further 20 may be added when a day's numbers run out. Nine digits
// mean a birth before 1954; ten digits and a year below 54 mean 20xx.
func czechBirthNumber(s string) (time.Time, bool) {
	s = strings.ReplaceAll(s, "/", "")
	if len(s) != 9 && len(s) != 10 {
		return time.Time{}, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	yy, _ := strconv.Atoi(s[0:2])
	mm, _ := strconv.Atoi(s[2:4])
	dd, _ := strconv.Atoi(s[4:6])
	switch {
	case mm > 70:
		mm -= 70
	case mm > 50:
		mm -= 50
	case mm > 20:
		mm -= 20
	}
	year := 1900 + yy
	if len(s) == 10 && yy < 54 {
		year = 2000 + yy
	}
	t := time.Date(year, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	if t.Month() != time.Month(mm) || t.Day() != dd {
		return time.Time{}, false
	}
	return t, true
}

// ageOver answers "is the person at least N years old today".
func ageOver(v any, fn string, now time.Time) (bool, bool) {
	years := 18
	if fn == "age_over_21" {
		years = 21
	}
	born, ok := birthDate(v)
	if !ok {
		return false, false
	}
	return !born.AddDate(years, 0, 0).After(now), true
}

func yearOf(v any) (string, bool) {
	if t, ok := birthDate(v); ok {
		return strconv.Itoa(t.Year()), true
	}
	return "", false
}

// sortedSet sorts paths and drops repeats, in place; never nil, as the
// audit record's lists are arrays.
func sortedSet(paths []string) []string {
	if paths == nil {
		return []string{}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// scalarValue decodes a JSON string or number; anything else is nil.
func scalarValue(raw []byte) any {
	switch {
	case raw[0] == '"':
		if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			return string(raw[1 : len(raw)-1])
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return json.Number(raw)
	}
	return nil
}

// The scanners below run only on input json.Valid accepted.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func SkipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++ // and the character it escapes
		}
	}
	return len(b)
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = SkipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}

func emptyContainer(raw []byte) bool {
	return skipSpace(raw, 1) == len(raw)-1
}

// decodeKey is the key the JSON string raw holds: its bytes as they are when
// nothing is escaped, which is nearly always.
func decodeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw[1 : len(raw)-1]
	}
	var s string
	json.Unmarshal(raw, &s)
	return []byte(s)
}

// writeString writes s as a JSON string, escaping what JSON requires and
// nothing more (no HTML escaping: the body is JSON, not HTML).
func writeString(out *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		case c < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
}
