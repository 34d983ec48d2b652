package policy

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// shippedCopy copies the shipped policy to a temporary folder, with edit
// applied to each file's text.
func shippedCopy(t testing.TB, edit func(name, text string) string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob("../configs/policies/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(edit(name, string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func unchanged(_, text string) string { return text }

// end users is a random call of many end users, with the times at the edges
// of a second and of expiry, so that a stand-in that lost a fact would answer
// one end user with another's decision.
type endUsers struct {
	rng  *rand.Rand
	base time.Time
	n    int
}

func (u *endUsers) pick(s ...string) string { return s[u.rng.IntN(len(s))] }

func (u *endUsers) subset(s ...string) []string {
	var out []string
	for _, v := range s {
		if u.rng.IntN(3) > 0 {
			out = append(out, v)
		}
	}
	return out
}

// operations are the calls of the shipped profiles the policy treats
// differently: personal data with age sources, a binary body, an erasure, a
// consent-free and a tenant operation.
var operations = []Input{
	{Vendor: "airbank", Operation: "airbank.personalData", Method: "GET", Path: "/p", Body: "json", Class: "subject",
		ResponseFields: map[string]string{"names": "identity", "birthNumber": "national_id", "birthDate": "identity",
			"permanentAddress.street": "address", "politicallyExposedPerson": "pep", "status": "metadata"},
		RequestFields: map[string]string{"clientId": "metadata", "phone": "contact"}},
	{Vendor: "biometric", Operation: "biometric.liveness", Method: "POST", Path: "/l", Body: "binary", Class: "subject",
		ResponseFields: map[string]string{"score": "biometric", "sessionId": "metadata"}},
	{Vendor: "kb", Operation: "kb.erase", Method: "DELETE", Path: "/e", Body: "json", Class: "subject", Erasure: true,
		ResponseFields: map[string]string{"status": "metadata"}},
	{Vendor: "banqware", Operation: "banqware.updateCallback", Method: "POST", Path: "/c", Body: "json", Class: "subject",
		ResponseFields: map[string]string{"status": "metadata", "owner": "identity"}},
	{Vendor: "banqware", Operation: "banqware.tenantUrls", Method: "PUT", Path: "/t", Body: "json", Class: "tenant",
		ResponseFields: map[string]string{"urls": "metadata"}},
}

// bases are the seconds calls are made around: now, either side of the Unix
// epoch (where whole seconds round down, not toward zero) and near the ends
// of the range OPA can take as nanoseconds, in zones either side of UTC.
var bases = []time.Time{
	time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
	time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(1969, 12, 31, 23, 59, 59, 0, time.FixedZone("", -(11*3600+1800))),
	time.Date(1679, 6, 1, 0, 0, 0, 0, time.FixedZone("", 14*3600)),
	time.Date(2261, 6, 1, 0, 0, 0, 0, time.UTC),
}

func (u *endUsers) next() *Input {
	u.n++
	in := operations[u.rng.IntN(len(operations))]
	in.App = App{ID: u.pick("onboarding-web", "onboarding-web", "eshop-checkout", "pfm-mobile", "stranger", ""), Role: "app"}
	in.Purpose = u.pick("kyc-onboarding", "age-verification", "account-aggregation", "biometric-verification", "", "unknown")
	in.Present = u.subset("clientId", "phone", "extra")
	// Any second, anywhere within it.
	base := u.base
	if u.rng.IntN(3) == 0 {
		base = bases[u.rng.IntN(len(bases))]
	}
	in.Now = base.Add(time.Duration(u.rng.IntN(3))*time.Second + time.Duration(u.rng.Int64N(int64(time.Second))))
	if u.rng.IntN(5) == 0 {
		return &in // no consent header
	}
	in.ConsentID = "cst_" + strings.Repeat("x", u.n%5) + time.Duration(u.n).String()
	if u.rng.IntN(6) == 0 {
		return &in // unknown consent
	}
	c := &Consent{ID: in.ConsentID, App: in.App.ID, Subject: "subject-" + time.Duration(u.rng.Int64()).String(),
		Vendors: u.messy(u.subset("airbank", "biometric", "kb", "banqware")), Purposes: u.messy(u.subset("kyc-onboarding",
			"age-verification", "account-aggregation", "biometric-verification")),
		Categories: u.messy(u.subset("identity", "national_id", "address", "biometric", "account", "contact")),
		Status:     u.pick("active", "active", "active", "revoked", "expired", "paused", "", "Active"),
		GrantedAt:  in.Now.Add(-time.Duration(u.rng.Int64N(int64(1000 * time.Hour))))}
	// Expiry in the same second as now, the one before or after, or far off.
	second := in.Now.Truncate(time.Second)
	switch u.rng.IntN(4) {
	case 3:
		c.ExpiresAt = in.Now.Add(time.Duration(u.rng.IntN(1000)-500) * time.Hour)
	default:
		c.ExpiresAt = second.Add(time.Duration(u.rng.IntN(3)-1)*time.Second + time.Duration(u.rng.Int64N(int64(time.Second))))
	}
	switch u.rng.IntN(10) {
	case 0:
		c.ID = "cst_other"
	case 1:
		in.ConsentID, c.ID = "", "" // a record of no id, under no header
	}
	if u.rng.IntN(8) == 0 {
		c.App = "pfm-mobile"
	}
	in.Consent = c
	return &in
}

// messy shuffles s and may repeat an element or add an empty string, which a
// set in Rego ignores and a list does not.
func (u *endUsers) messy(s []string) []string {
	u.rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	if len(s) > 0 && u.rng.IntN(4) == 0 {
		s = append(s, s[0])
	}
	if u.rng.IntN(8) == 0 {
		s = append(s, "")
	}
	return s
}

// TestStandInsAnswerAsEvaluation is the differential test of the decision for
// any end user: the shipped policy with the memo keyed on stand-ins answers
// thousands of end users' calls exactly as a full evaluation of each does.
func TestStandInsAnswerAsEvaluation(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	opts := Options{Source: Source{Dir: "../configs/policies"}, Timeout: 5 * time.Second, Registerer: reg}
	fast, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := fast.Status().Memo; !strings.HasPrefix(st, "on, for any end user") {
		t.Fatalf("the shipped policy's memo is %q: its decisions are not shared by end users", st)
	}
	opts.MemoEntries, opts.Registerer = -1, nil
	full, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	calls := 4000
	if testing.Short() {
		calls = 1500
	}
	u := &endUsers{rng: rand.New(rand.NewPCG(11, 12)), base: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	outcomes := map[string]int{}
	same := func(i int, in *Input) {
		t.Helper()
		got, want := fast.Decide(ctx, in), full.Decide(ctx, in)
		if got.Err != "" || want.Err != "" {
			t.Fatalf("call %d: evaluation failed: %q %q", i, got.Err, want.Err)
		}
		got.ID, want.ID = "", ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("call %d %+v (consent %+v):\nremembered %+v\nevaluated  %+v", i, in, in.Consent, got, want)
		}
		outcomes[strings.Join(want.Reasons, ",")]++
	}
	for i := range calls {
		in := u.next()
		same(i, in)
		// Another end user in the same situation, some seconds later, is
		// answered from the memo, and rightly.
		before := memoHits(t, reg)
		twin := u.twin(in)
		same(i, twin)
		if memoHits(t, reg) != before+1 {
			t.Fatalf("call %d: the twin %+v of %+v was evaluated again", i, twin.Consent, in.Consent)
		}
	}
	// The calls must reach every kind of answer, or the comparison proves little.
	for _, reason := range []string{"consent active,purpose covered", "consent expired", "consent revoked",
		"operation needs no consent", "tenant operation granted", "erasure of the end user's data", "unknown consent",
		"no consent header", "consent of another app", "vendor not in consent", "purpose not in consent"} {
		if !containsReason(outcomes, reason) {
			t.Errorf("no call was answered %q; outcomes %v", reason, outcomes)
		}
	}
}

// twin is another end user in in's situation: other ids, subject and grant
// time, the same second shifted by a whole number of seconds.
func (u *endUsers) twin(in *Input) *Input {
	tw := *in
	shift := time.Duration(1+u.rng.IntN(100000)) * time.Second
	tw.Now = in.Now.Add(shift)
	if in.ConsentID != "" {
		tw.ConsentID = in.ConsentID + "-twin"
	}
	if c := in.Consent; c != nil {
		tc := *c
		tc.ID = "cst_other-twin"
		if c.ID == in.ConsentID {
			tc.ID = tw.ConsentID
		}
		tc.Subject, tc.GrantedAt, tc.ExpiresAt = c.Subject+"-twin", c.GrantedAt.Add(-time.Hour), c.ExpiresAt.Add(shift)
		tw.Consent = &tc
	}
	return &tw
}

func containsReason(outcomes map[string]int, reason string) bool {
	for k := range outcomes {
		if strings.Contains(k, reason) {
			return true
		}
	}
	return false
}

// TestStandInsExpiryAtTheSecond: a consent that expires at 10:00:01 covers a
// call at 10:00:00.999 and not one at 10:00:01.000, even when the first call's
// decision is remembered.
func TestStandInsExpiryAtTheSecond(t *testing.T) {
	e, err := New(context.Background(), Options{Source: Source{Dir: "../configs/policies"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Date(2026, 12, 6, 10, 0, 1, 0, time.UTC)
	call := func(id string, now time.Time, status string) Decision {
		in := operations[0]
		in.App, in.Purpose, in.ConsentID, in.Now = App{ID: "onboarding-web"}, "kyc-onboarding", id, now
		in.Consent = &Consent{ID: id, App: "onboarding-web", Vendors: []string{"airbank"}, Purposes: []string{"kyc-onboarding"},
			Categories: []string{"identity"}, Status: status, ExpiresAt: expiry}
		return e.Decide(context.Background(), &in)
	}
	for _, tt := range []struct {
		now    time.Time
		status string
		allow  bool
	}{
		{expiry.Add(-time.Nanosecond), "active", true},
		{expiry, "active", false},
		{expiry.Add(-time.Second), "active", true},
		{expiry.Add(-time.Nanosecond), "revoked", false},
		{expiry.Add(-time.Nanosecond), "active", true},
		{expiry.Add(999 * time.Millisecond), "active", false},
	} {
		for _, id := range []string{"cst_a", "cst_b"} { // the second end user is answered from the memo
			if d := call(id, tt.now, tt.status); d.Allow != tt.allow {
				t.Errorf("%s at %s, %s: allow %v (%v), want %v", id, tt.now.Format(time.RFC3339Nano), tt.status, d.Allow, d.Reasons, tt.allow)
			}
		}
	}
}

// A policy that reads who the person is anywhere but in the proven
// consentgate.consent gets decisions per end user, and they are right.
func TestStandInsOffWhenPolicyReadsPersonalValues(t *testing.T) {
	addRule := func(file, rule string) func(string, string) string {
		return func(name, text string) string {
			if name == file {
				return text + "\n" + rule + "\n"
			}
			return text
		}
	}
	const vip = `deny contains "vip" if input.consent.subject == "vip"`
	for _, tt := range []struct {
		name  string
		edit  func(string, string) string
		why   string
		isVIP bool   // the edit denies the end user whose subject is "vip"
		extra string // a module of its own, written as extra.rego
	}{
		{"input.consent read outside consent", addRule("consentgate.rego", vip), "reads input.consent.subject", true, ""},
		{"record read outside consent", addRule("consentgate.rego", `deny contains "vip" if consent.record.subject == "vip"`),
			"data.consentgate.consent.record.subject", true, ""},
		{"record in a comprehension", addRule("consentgate.rego", `deny contains "vip" if { some r in [consent.record]; r.subject == "vip" }`),
			"data.consentgate.consent.record", true, ""},
		{"the package as a whole", addRule("consentgate.rego",
			`deny contains "vip" if object.get(consent, ["record", "subject"], "") == "vip"`), "consentgate.consent as a whole", true, ""},
		{"the package by a computed key", addRule("apps.rego",
			`vip if { some k in ["consent"]; data.consentgate[k].record.subject == "vip" }`), "which may be consentgate.consent", false, ""},
		{"rule added to consent elsewhere", addRule("consentgate.rego", `consent.deny contains "vip" if input.app.id == "nobody"`),
			"defines data.consentgate.consent.deny", false, ""},
		{"consent.rego edited", addRule("consent.rego", `deny contains "vip" if record.subject == "vip"`), "not the consentgate.consent", true, ""},
		{"the clock read outside consent", addRule("purposes.rego", `deny contains "late" if input.now > "2030"`), "reads input.now", false, ""},
		{"with", addRule("consentgate.rego", `deny contains "x" if { consent.deny with input.app.id as "x"; false }`), "uses `with`", false, ""},
		{"the whole input", addRule("apps.rego", `everything := input`), "reads the whole input", false, ""},
		{"the consent header", addRule("apps.rego", `header := input.consent_id`), "reads input.consent_id", false, ""},
		{"inside every", addRule("consentgate.rego", `deny contains "vip" if { every v in ["vip"] { input.consent.subject == v } }`),
			"reads input.consent.subject", true, ""},
		{"in an else", addRule("consentgate.rego", "vipness := \"vip\" if input.consent.subject == \"vip\" else := \"no\"\n"+
			`deny contains "vip" if vipness == "vip"`), "reads input.consent.subject", true, ""},
		{"an imported input alias", unchanged, "reads input.consent", false,
			"package consentgate.extra\n\nimport input.consent as c\n\nvip if c.subject == \"vip\"\n"},
		{"an imported record alias", unchanged, "data.consentgate.consent.record", false,
			"package consentgate.extra\n\nimport data.consentgate.consent.record as r\n\nvip if r.subject == \"vip\"\n"},
		{"a package below consent", unchanged, "defines data.consentgate.consent.sub", false,
			"package consentgate.consent.sub\n\nx := 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := shippedCopy(t, tt.edit)
			if tt.extra != "" {
				writePolicy(t, dir, "extra.rego", tt.extra)
			}
			e, err := New(context.Background(), Options{Source: Source{Dir: dir}, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if st := e.Status().Memo; !strings.Contains(st, "per end user") || !strings.Contains(st, tt.why) {
				t.Errorf("memo %q, want per end user because of %q", st, tt.why)
			}
			if !tt.isVIP {
				return
			}
			for _, order := range [][]string{{"someone", "vip"}, {"vip", "someone"}} {
				for _, subject := range order {
					in := operations[0]
					in.App, in.Purpose, in.ConsentID, in.Now = App{ID: "onboarding-web"}, "kyc-onboarding", "cst_"+subject, time.Now()
					in.Consent = &Consent{ID: in.ConsentID, App: "onboarding-web", Subject: subject, Vendors: []string{"airbank"},
						Purposes: []string{"kyc-onboarding"}, Categories: []string{"identity"}, Status: "active", ExpiresAt: in.Now.Add(time.Hour)}
					if d := e.Decide(context.Background(), &in); d.Allow != (subject != "vip") {
						t.Errorf("order %v: %s allowed %v (%v)", order, subject, d.Allow, d.Reasons)
					}
				}
			}
		})
	}
	// Editing the prose of consent.rego, its metadata included, keeps the proof.
	edited := shippedCopy(t, func(name, text string) string {
		if name == "consent.rego" {
			text = strings.Replace(text, "# title: The end user's consent", "# title: The consent of the end user", 1)
			return strings.ReplaceAll(text, "\n# ", "\n# Reworded: ")
		}
		return text
	})
	e, err := New(context.Background(), Options{Source: Source{Dir: edited}})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Status().Memo; !strings.HasPrefix(st, "on, for any end user") {
		t.Errorf("after a comment edit the memo is %q", st)
	}
}

// TestStandInsAcrossReload decides end users' calls without pause while the
// policy is reloaded back and forth between two revisions that answer
// differently: every decision is the one its revision gives on full
// evaluation, so no remembered answer outlives its revision.
func TestStandInsAcrossReload(t *testing.T) {
	ctx := context.Background()
	variants := []func(string, string) string{unchanged, func(name, text string) string {
		if name != "data.yaml" {
			return text
		}
		text = strings.Replace(text, "national_id: mask # the birth number", "national_id: hash # the birth number", 1)
		return strings.Replace(text, "    purposes: [account-aggregation]", "    purposes: []", 1)
	}}
	refs := map[string]*Engine{}
	var dirs []string
	for _, v := range variants {
		dir := shippedCopy(t, v)
		e, err := New(ctx, Options{Source: Source{Dir: dir}, MemoEntries: -1, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		refs[e.Revision()] = e
		dirs = append(dirs, dir)
	}
	if len(refs) != 2 {
		t.Fatal("the two variants are one revision")
	}
	live := t.TempDir()
	copyPolicy := func(from string) {
		files, _ := filepath.Glob(filepath.Join(from, "*"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(filepath.Join(live, filepath.Base(f)), b, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	copyPolicy(dirs[0])
	e, err := New(ctx, Options{Source: Source{Dir: live}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var seen sync.Map
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range 3 {
		wg.Go(func() {
			u := &endUsers{rng: rand.New(rand.NewPCG(21, uint64(w))), base: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
			for !stop.Load() {
				in := u.next()
				got := e.Decide(ctx, in)
				ref, ok := refs[got.Revision]
				if !ok {
					t.Errorf("decision of unknown revision %q", got.Revision)
					return
				}
				want := ref.Decide(ctx, in)
				got.ID, got.Revision, want.ID, want.Revision = "", "", "", ""
				if !reflect.DeepEqual(got, want) {
					t.Errorf("after reloads, %+v (consent %+v):\nanswered  %+v\nevaluated %+v", in, in.Consent, got, want)
					return
				}
				seen.Store(ref, true)
				n.Add(1)
			}
		})
	}
	for i := range 8 {
		// Some decisions on this revision before the next.
		for target := n.Load() + 30; n.Load() < target && !t.Failed(); {
			runtime.Gosched()
		}
		copyPolicy(dirs[(i+1)%2])
		if err := e.Reload(ctx); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	revisions := 0
	seen.Range(func(any, any) bool { revisions++; return true })
	if revisions != 2 || n.Load() < 100 {
		t.Errorf("%d decisions over %d revisions: the reloads did not happen under load", n.Load(), revisions)
	}
}

// A call the policy cannot decide is never answered from the memo: a time OPA
// cannot take as nanoseconds fails evaluation even where no consent is read
// around it, as in a rule that reads the running fact without found.
func TestStandInsNeverAnswerForAFailure(t *testing.T) {
	ctx := context.Background()
	dir := shippedCopy(t, addRuleTo("consentgate.rego", `deny contains "never" if { consent.running; count(input.app.id) > 100 }`))
	fast, err := New(ctx, Options{Source: Source{Dir: dir}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st := fast.Status().Memo; !strings.HasPrefix(st, "on, for any end user") {
		t.Fatalf("memo %q", st)
	}
	tenant := func(now time.Time) *Input {
		in := operations[4]
		in.App, in.Now = App{ID: "onboarding-web", Role: "app"}, now
		return &in
	}
	if d := fast.Decide(ctx, tenant(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))); !d.Allow {
		t.Fatalf("the tenant call in range was denied: %v", d.Reasons)
	}
	for _, year := range []int{1600, 2300} {
		if d := fast.Decide(ctx, tenant(time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC))); d.Allow || d.Reasons[0] != ReasonEvalError {
			t.Errorf("in %d the call was answered %v %v, not evaluated and failed", year, d.Allow, d.Reasons)
		}
	}
}

func addRuleTo(file, rule string) func(string, string) string {
	return func(name, text string) string {
		if name == file {
			return text + "\n" + rule + "\n"
		}
		return text
	}
}
