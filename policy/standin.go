package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/version"
)

// A decision for any end user.
//
// The memo keys a decision on every part of the input the policy reads. With
// the consent's id and times and the clock among them, each end user's first
// call of the second was a new question: a full evaluation, so the cost of
// deciding grew with the number of customers. Yet the shipped policy reads
// those values only in package consentgate.consent, which turns them into facts
// that are the same for every end user in the same situation (the header is
// there, names this record, the consent still runs). So the memo may key on
// stand-ins that keep those facts and drop the rest: a decision evaluated for
// one end user answers the next one in the same situation.
//
// That holds only while (1) package consentgate.consent is the one the
// stand-ins are proven for, by fingerprint and by the differential test in
// standin_test.go, under the OPA release they were proven with, and (2) no
// other module reads the personal values, directly or through that package's
// id and record. load checks both; a policy that fails either keeps a memo
// keyed on the whole input (correct, slower), and /v1/policy/status says why.

// consentPackage is the package allowed to read the personal values.
var consentPackage = ast.MustParseRef("data.consentgate.consent")

// consentFingerprint identifies the consentgate.consent the stand-ins are
// proven for (see fingerprint). Change it only with standin_test.go passing.
const consentFingerprint = "355599af69f454f4"

// provenWithOPA is the OPA release whose built-ins (time.parse_rfc3339_ns and
// its range, membership in arrays and sets) the stand-ins were proven against.
// Under another release decisions are remembered per end user until
// standin_test.go has passed with it and this is changed.
const provenWithOPA = "1.22.2"

// consentFacts are the rules of consentgate.consent other modules may read:
// each is the same for two inputs with the same stand-ins.
var consentFacts = map[string]bool{"deny": true, "found": true, "own": true, "running": true, "categories": true, "purpose_listed": true}

// personalInput are the input keys whose values differ per end user or per
// second.
var personalInput = map[string]bool{"consent": true, "consent_id": true, "now": true}

// standInsHold says why the stand-ins would not give the policy's answer, or
// "" when they do. parsed are the modules as written (the compiled ones'
// generated names depend on the other modules).
func standInsHold(compiler *ast.Compiler, parsed map[string]*ast.Module) string {
	if version.Version != provenWithOPA {
		return "the stand-ins are proven with OPA " + provenWithOPA + ", not " + version.Version
	}
	proven := 0
	for _, name := range slices.Sorted(maps.Keys(compiler.Modules)) {
		mod := compiler.Modules[name]
		if mod.Package.Path.Equal(consentPackage) {
			if fp := fingerprint(parsed[name]); fp != consentFingerprint {
				return fmt.Sprintf("%s is not the consentgate.consent the stand-ins are proven for (fingerprint %s)", name, fp)
			}
			proven++
			continue
		}
		if why := personalReads(mod); why != "" {
			return name + " " + why
		}
	}
	if proven > 1 {
		return fmt.Sprintf("%d modules declare package consentgate.consent, not one", proven)
	}
	return ""
}

// fingerprint digests a module without its comments and metadata,
// so that editing prose does not change it and editing a rule does.
func fingerprint(mod *ast.Module) string {
	c := mod.Copy()
	c.Comments, c.Annotations = nil, nil
	for _, r := range c.Rules {
		r.Annotations = nil
	}
	sum := sha256.Sum256([]byte(c.String()))
	return hex.EncodeToString(sum[:8])
}

// personalReads names the first read of a personal value in mod: a personal
// input key, the input or the consent package as a whole or by a computed
// key, a rule of that package that is not a fact, or a `with` that could
// replace any of them; or a rule that adds to that package, which could change
// what its facts mean.
//
// Only rules are walked: the package clause and imports name packages without
// reading them (the compiler has resolved imported names in the rules).
func personalReads(mod *ast.Module) (why string) {
	for _, rule := range mod.Rules {
		if p := mod.Package.Path.Extend(rule.Head.Ref().GroundPrefix()); p.HasPrefix(consentPackage) {
			return "defines " + p.String() + " outside consentgate.consent's proven module"
		}
		ast.WalkRefs(rule, func(r ast.Ref) bool {
			if why == "" {
				why = personalRef(r)
			}
			return why != ""
		})
		ast.WalkExprs(rule, func(x *ast.Expr) bool {
			if why == "" && len(x.With) > 0 {
				why = "uses `with` in " + x.String()
			}
			return why != ""
		})
	}
	return why
}

func personalRef(r ast.Ref) string {
	switch {
	case r.HasPrefix(ast.InputRootRef):
		if len(r) < 2 {
			return "reads the whole input"
		}
		if k, ok := r[1].Value.(ast.String); !ok || personalInput[string(k)] {
			return "reads " + r.String()
		}
	case r.HasPrefix(ast.DefaultRootRef):
		for i := 1; i < len(consentPackage); i++ {
			if i >= len(r) || !r[i].IsGround() {
				return "reads " + r.String() + ", which may be consentgate.consent"
			}
			if !r[i].Equal(consentPackage[i]) {
				return ""
			}
		}
		if len(r) == len(consentPackage) {
			return "reads consentgate.consent as a whole"
		}
		if k, ok := r[len(consentPackage)].Value.(ast.String); !ok || !consentFacts[string(k)] {
			return "reads " + r.String() + ", which is not one of consentgate.consent's facts"
		}
	}
	return ""
}

// appendStandIn writes, for a personal input key, what package
// consentgate.consent can tell from it (fingerprinted as it is): whether the
// consent header is set; whether the record's id is the header, its app the
// caller, the call's vendor and purpose among its own; its status and set of
// categories; and whether now comes before expires_at in whole seconds (as
// their RFC 3339 forms compare). ok is false for a time OPA cannot take as
// nanoseconds: such a call is evaluated, not remembered.
func (in *Input) appendStandIn(b []byte, name string) ([]byte, bool) {
	switch name {
	case "consent_id":
		return appendBool(b, in.ConsentID != ""), true
	case "now":
		// A rule may read a fact derived from the clock without a consent
		// (running, outside found): a time OPA fails on must fail every time.
		return append(b, tagAbsent), nanosecondTime(in.Now)
	case "consent":
		c := in.Consent
		if c == nil {
			return append(b, tagNull), true
		}
		if !nanosecondTime(in.Now) || !nanosecondTime(c.ExpiresAt) {
			return b, false
		}
		b = appendBool(append(b, tagObject), c.ID == in.ConsentID)
		b = appendBool(b, in.Now.Unix() < c.ExpiresAt.Unix())
		b = appendBool(b, c.App == in.App.ID)
		b = appendBool(b, slices.Contains(c.Vendors, in.Vendor))
		b = appendBool(b, slices.Contains(c.Purposes, in.Purpose))
		b = appendString(append(b, tagString), c.Status)
		return appendSet(b, c.Categories), true
	}
	return b, false
}

// appendSet writes s sorted and without repeats, as the set a policy makes of
// it, sorted in a pooled slice.
func appendSet(b []byte, s []string) []byte {
	kp := keySlices.Get().(*[]string)
	set := append((*kp)[:0], s...)
	slices.Sort(set)
	set = slices.Compact(set)
	b = appendStrings(b, set)
	*kp = set[:0]
	keySlices.Put(kp)
	return b
}

// nanosecondTime is a time whose RFC 3339 form time.parse_rfc3339_ns takes.
func nanosecondTime(t time.Time) bool {
	y := t.UTC().Year()
	return y > 1678 && y < 2262
}
