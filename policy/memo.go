package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// DefaultMemoEntries bounds the decisions one revision remembers.
const DefaultMemoEntries = 4096

// memo remembers the decisions of one revision. A policy that calls no
// nondeterministic built-in (time.now_ns, http.send, rand.intn, …) is a pure
// function of its input and its data, and the data belongs to the revision: so
// an input equal to an earlier one in every part the policy reads gets the
// earlier decision without evaluating again. Nothing else is traded: a revoked
// consent, a changed purpose or an expiry passed is a different input, and a
// reload starts a new revision with an empty memo. Where the policy lets it
// (standin.go), the consent's ids and times are keyed by what the policy can
// tell from them, so one end user's decision answers the next one's call.
//
// Failures to decide (timeouts, evaluation errors) are never remembered, so an
// overload cannot turn into lasting denials.
type memo struct {
	// reads are the top-level input keys the policy reads, sorted; all means it
	// reads input as a whole (or by a computed key), so every key counts.
	reads []string
	all   bool
	// off says why decisions are not remembered ("" when they are).
	off string
	// anyUser says the key holds stand-ins for the personal values
	// (standin.go); perUser says why it does not. It is set, not derived from
	// perUser, so that a memo's zero value keys per end user.
	anyUser bool
	perUser string
	max     int

	mu sync.Mutex
	m  map[[sha256.Size]byte]Decision
}

// newMemo inspects the compiled modules: which input keys they read, and
// whether any of them calls a built-in whose answer can change between two
// evaluations of the same input.
func newMemo(compiler *ast.Compiler, parsed map[string]*ast.Module, max int) *memo {
	mo := &memo{max: max, m: map[[sha256.Size]byte]Decision{}}
	if max < 0 {
		mo.off = "disabled"
		return mo
	}
	reads := map[string]bool{}
	for _, mod := range compiler.Modules {
		ast.WalkRefs(mod, func(r ast.Ref) bool {
			if !r.HasPrefix(ast.InputRootRef) {
				return false
			}
			if len(r) < 2 {
				mo.all = true
				return false
			}
			if k, ok := r[1].Value.(ast.String); ok {
				reads[string(k)] = true
			} else {
				mo.all = true
			}
			return false
		})
		ast.WalkExprs(mod, func(x *ast.Expr) bool {
			if mo.off == "" && x.IsCall() {
				mo.off = nondeterministic(x.Operator())
			}
			return false
		})
		ast.WalkTerms(mod, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && mo.off == "" && len(c) > 0 {
				if r, ok := c[0].Value.(ast.Ref); ok {
					mo.off = nondeterministic(r)
				}
			}
			return false
		})
	}
	for k := range reads {
		mo.reads = append(mo.reads, k)
	}
	slices.Sort(mo.reads)
	if mo.off == "" {
		mo.perUser = standInsHold(compiler, parsed)
		mo.anyUser = mo.perUser == ""
	}
	return mo
}

// nondeterministic names a call the memo cannot see through, or returns "".
// Calls of the policy's own functions (data.…) are followed by the walk over
// their modules; a name that is neither one of them nor a known deterministic
// built-in counts as nondeterministic.
func nondeterministic(op ast.Ref) string {
	if op.HasPrefix(ast.DefaultRootRef) {
		return ""
	}
	name := op.String()
	b, ok := ast.BuiltinMap[name]
	if !ok || b.Nondeterministic || readsClock[name] {
		return "the policy calls " + name + ", which may answer differently for the same input"
	}
	return ""
}

// readsClock are built-ins OPA does not mark nondeterministic that still read
// the current time: a certificate verified today may have expired tomorrow.
var readsClock = map[string]bool{
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
}

// describe is what /v1/policy/status shows about the memo.
func (mo *memo) describe() string {
	switch {
	case mo.off != "":
		return "off: " + mo.off
	case mo.all:
		return "on, per end user (the policy reads the whole input)"
	case mo.anyUser:
		return "on, for any end user (the policy reads input." + strings.Join(mo.reads, ", input.") + ")"
	default:
		return "on, per end user, since " + mo.perUser + " (the policy reads input." + strings.Join(mo.reads, ", input.") + ")"
	}
}

// key digests the parts of input the policy reads. ok is false when memoising
// is off or the input holds a value the encoding does not know, and when the
// memo keys on stand-ins, which only keyOf writes: a raw input (`policy eval`)
// is evaluated.
func (mo *memo) key(input map[string]any) (k [sha256.Size]byte, ok bool) {
	if mo.off != "" || mo.anyUser {
		return k, false
	}
	buf := keyBuffers.Get().(*[]byte)
	b := (*buf)[:0]
	ok = true
	if mo.all {
		b, ok = appendCanonical(b, input)
	} else {
		for _, name := range mo.reads {
			b = appendString(b, name)
			v, present := input[name]
			if !present {
				b = append(b, tagAbsent)
				continue
			}
			if b, ok = appendCanonical(b, v); !ok {
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

var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func (mo *memo) get(k [sha256.Size]byte) (Decision, bool) {
	mo.mu.Lock()
	d, ok := mo.m[k]
	mo.mu.Unlock()
	return d, ok
}

// put remembers d. When the memo is full it starts over: entries keyed by an
// earlier second of input.now would never match again anyway.
func (mo *memo) put(k [sha256.Size]byte, d Decision) {
	d.ID, d.Revision = "", ""
	mo.mu.Lock()
	if len(mo.m) >= mo.max {
		clear(mo.m)
	}
	mo.m[k] = d
	mo.mu.Unlock()
}

// Tags keep the encoding unambiguous: no two different inputs encode alike.
const (
	tagAbsent byte = iota
	tagNull
	tagFalse
	tagTrue
	tagString
	tagNumber
	tagArray
	tagObject
)

// appendCanonical encodes v, a JSON-like tree, with object keys sorted. Numbers
// are encoded by their text: 1 and 1.0 differ here though OPA finds them
// equal, which costs a miss, never a wrong answer.
func appendCanonical(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, tagNull), true
	case bool:
		if v {
			return append(b, tagTrue), true
		}
		return append(b, tagFalse), true
	case string:
		return appendString(append(b, tagString), v), true
	case int:
		return appendNumber(b, json.Number(strconv.Itoa(v))), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, false
		}
		n, err := json.Marshal(v)
		if err != nil {
			return b, false
		}
		return appendNumber(b, json.Number(n)), true
	case json.Number:
		return appendNumber(b, v), true
	case []any:
		b = binary.AppendUvarint(append(b, tagArray), uint64(len(v)))
		for _, e := range v {
			var ok bool
			if b, ok = appendCanonical(b, e); !ok {
				return b, false
			}
		}
		return b, true
	case []string:
		b = binary.AppendUvarint(append(b, tagArray), uint64(len(v)))
		for _, e := range v {
			b = appendString(append(b, tagString), e)
		}
		return b, true
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(append(b, tagObject), uint64(len(v)))
		for _, k := range keys {
			b = appendString(b, k)
			var ok bool
			if b, ok = appendCanonical(b, v[k]); !ok {
				return b, false
			}
		}
		return b, true
	default:
		return b, false
	}
}

func appendNumber(b []byte, n json.Number) []byte {
	return appendString(append(b, tagNumber), string(n))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
