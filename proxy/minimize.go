package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consentgate/consentgate/policy"
)

// ErrUnparsableBody means a body that must be minimised is not JSON: nothing of it
// may be passed on.
var ErrUnparsableBody = errors.New("body is not JSON and cannot be minimised")

// minimizer applies a decision's field actions to a JSON document. Paths are dotted
// with [] for array elements; a path the decision does not name follows the
// default unless a longer named path lies below it, in which case the walk goes
// down to find it.
type minimizer struct {
	fields   map[string]string
	def      string
	prefixes map[string]bool // every proper prefix of a named path
	hashKey  []byte
	now      time.Time

	withheld  map[string]bool
	disclosed map[string]bool
}

// minimized is what minimisation did, for the response header and the audit log.
type minimized struct {
	body      []byte
	withheld  []string
	disclosed []string
}

func newMinimizer(fields map[string]string, def string, hashKey []byte, now time.Time) *minimizer {
	m := &minimizer{fields: fields, def: def, prefixes: map[string]bool{}, hashKey: hashKey, now: now,
		withheld: map[string]bool{}, disclosed: map[string]bool{}}
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

// minimize rewrites a JSON body. An empty body stays empty.
func (m *minimizer) minimize(body []byte) (minimized, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return minimized{body: body}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return minimized{}, ErrUnparsableBody
	}
	if dec.More() {
		return minimized{}, ErrUnparsableBody
	}
	out, keep := m.value(doc, "")
	if !keep {
		out = map[string]any{}
		if _, isArray := doc.([]any); isArray {
			out = []any{}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return minimized{}, fmt.Errorf("encoding minimised body: %w", err)
	}
	return minimized{body: bytes.TrimSuffix(buf.Bytes(), []byte("\n")), withheld: sortedSet(m.withheld), disclosed: sortedSet(m.disclosed)}, nil
}

// value returns what stays of v at path, and false if nothing does.
func (m *minimizer) value(v any, path string) (any, bool) {
	if action, ok := m.fields[path]; ok {
		return m.apply(action, v, path)
	}
	if m.prefixes[path] || path == "" {
		// A container emptied by minimisation is dropped too: an empty address
		// object would still tell that the vendor holds an address.
		switch x := v.(type) {
		case map[string]any:
			out := m.object(x, path)
			return out, len(out) > 0 || len(x) == 0
		case []any:
			out := make([]any, 0, len(x))
			for _, el := range x {
				if kept, ok := m.value(el, path+"[]"); ok {
					out = append(out, kept)
				}
			}
			return out, len(out) > 0 || len(x) == 0
		}
	}
	return m.apply(m.def, v, path)
}

func (m *minimizer) object(obj map[string]any, path string) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		p := joinPath(path, k)
		if strings.ContainsAny(k, ".[]") {
			// Such a key would read as a path to another field ("address.country"):
			// a decision cannot name it unambiguously, so it never goes out.
			m.withheld[p] = true
			continue
		}
		action, named := m.fields[p]
		if named && strings.HasPrefix(action, "derive:age_over_") {
			fn := strings.TrimPrefix(action, "derive:")
			if over, ok := ageOver(v, fn, m.now); ok {
				out[fn] = over
				m.withheld[p] = true
				m.disclosed[joinPath(path, fn)] = true
				continue
			}
			m.withheld[p] = true
			continue
		}
		if kept, ok := m.value(v, p); ok {
			out[k] = kept
		}
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (m *minimizer) apply(action string, v any, path string) (any, bool) {
	switch action {
	case policy.ActionKeep:
		m.disclosed[path] = true
		return v, true
	case policy.ActionMask:
		if s, ok := scalarString(v); ok {
			m.transformed(path)
			return mask(s), true
		}
	case policy.ActionHash:
		if s, ok := scalarString(v); ok {
			m.transformed(path)
			mac := hmac.New(sha256.New, m.hashKey)
			mac.Write([]byte(s))
			return hex.EncodeToString(mac.Sum(nil)), true
		}
	case "derive:country_only":
		if obj, ok := v.(map[string]any); ok {
			if c, ok := obj["country"].(string); ok {
				m.transformed(path)
				return c, true
			}
		}
	case "derive:year_only":
		if y, ok := yearOf(v); ok {
			m.transformed(path)
			return y, true
		}
	case "derive:last4":
		if s, ok := scalarString(v); ok && len(s) >= 4 {
			m.transformed(path)
			return s[len(s)-4:], true
		}
	}
	// drop, an action that does not fit the value, or an age derivation outside an
	// object: nothing of the value goes out.
	m.withheld[path] = true
	return nil, false
}

func (m *minimizer) transformed(path string) {
	m.withheld[path] = true
	m.disclosed[path] = true
}

func scalarString(v any) (string, bool) {
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

// birthDate reads a birth date from an ISO date, an RFC 3339 time, a unix time in
// milliseconds, or a Czech birth number.
func birthDate(v any) (time.Time, bool) {
	s, ok := scalarString(v)
	if !ok {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
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

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// presentFields lists the leaf paths of a JSON document, for the policy input.
func presentFields(v any, path string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			presentFields(val, joinPath(path, k), out)
		}
	case []any:
		for _, el := range x {
			presentFields(el, path+"[]", out)
		}
		if len(x) == 0 && path != "" {
			out[path+"[]"] = true
		}
	default:
		if path != "" {
			out[path] = true
		}
	}
}
