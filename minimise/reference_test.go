package minimise

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/consentgate/consentgate/policy"
)

// refMinimizer is the first, tree-based minimiser: decode everything, rebuild,
// encode. It is slow but plain, and serves as the oracle the byte-walking
// minimiser is fuzzed against.
type refMinimizer struct {
	*Minimiser
	withheld, disclosed map[string]bool
}

func newRef(fields map[string]string, def string, hashKey []byte, now time.Time) refMinimizer {
	return refMinimizer{New(fields, def, hashKey, now), map[string]bool{}, map[string]bool{}}
}

func refSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m refMinimizer) refMinimize(body []byte) (Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Result{Body: body}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Result{}, ErrUnparsable
	}
	if dec.More() {
		return Result{}, ErrUnparsable
	}
	out, keep := m.refValue(doc, "")
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
		return Result{}, fmt.Errorf("encoding minimised body: %w", err)
	}
	return Result{Body: bytes.TrimSuffix(buf.Bytes(), []byte("\n")), Withheld: refSet(m.withheld), Disclosed: refSet(m.disclosed)}, nil
}

func (m refMinimizer) refValue(v any, path string) (any, bool) {
	if action, ok := m.fields[path]; ok {
		return m.refApply(action, v, path)
	}
	if m.prefixes[path] || path == "" {
		// A container emptied by minimisation is dropped too: an empty address
		// object would still tell that the vendor holds an address.
		switch x := v.(type) {
		case map[string]any:
			out := m.refObject(x, path)
			return out, len(out) > 0 || len(x) == 0
		case []any:
			out := make([]any, 0, len(x))
			for _, el := range x {
				if kept, ok := m.refValue(el, path+"[]"); ok {
					out = append(out, kept)
				}
			}
			return out, len(out) > 0 || len(x) == 0
		}
	}
	return m.refApply(m.def, v, path)
}

func (m refMinimizer) refObject(obj map[string]any, path string) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		p := JoinPath(path, k)
		if k == "" || strings.ContainsAny(k, ".[]") {
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
				m.disclosed[JoinPath(path, fn)] = true
				continue
			}
			m.withheld[p] = true
			continue
		}
		if kept, ok := m.refValue(v, p); ok {
			out[k] = kept
		}
	}
	return out
}

func (m refMinimizer) refApply(action string, v any, path string) (any, bool) {
	switch action {
	case policy.ActionKeep:
		m.disclosed[path] = true
		return v, true
	case ActionKeepScalar:
		switch v.(type) {
		case map[string]any, []any:
		default:
			m.disclosed[path] = true
			return v, true
		}
	case policy.ActionMask:
		if s, ok := ScalarString(v); ok {
			m.refTransformed(path)
			return mask(s), true
		}
	case policy.ActionHash:
		if s, ok := ScalarString(v); ok {
			m.refTransformed(path)
			mac := hmac.New(sha256.New, m.hashKey)
			mac.Write([]byte(s))
			return hex.EncodeToString(mac.Sum(nil)), true
		}
	case "derive:country_only":
		if obj, ok := v.(map[string]any); ok {
			if c, ok := obj["country"].(string); ok {
				m.refTransformed(path)
				return c, true
			}
		}
	case "derive:year_only":
		if y, ok := yearOf(v); ok {
			m.refTransformed(path)
			return y, true
		}
	case "derive:last4":
		if s, ok := ScalarString(v); ok && len(s) >= 4 {
			m.refTransformed(path)
			return s[len(s)-4:], true
		}
	}
	// drop, an action that does not fit the value, or an age derivation outside an
	// object: nothing of the value goes out.
	m.withheld[path] = true
	return nil, false
}

func (m refMinimizer) refTransformed(path string) {
	m.withheld[path] = true
	m.disclosed[path] = true
}
