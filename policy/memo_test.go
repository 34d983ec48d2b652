package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memoPolicy reads input.app and input.operation only, and echoes the app so a
// stale answer would show.
const memoPolicy = `package consentgate

decision := {"allow": input.operation == "v.ok", "reasons": [input.app.id]}
`

func memoHits(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "consentgate_policy_memo_hits_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no consentgate_policy_memo_hits_total")
	return 0
}

func TestMemoAnswersOnlyIdenticalReadInputs(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, _ := newTestEngine(t, memoPolicy, reg)
	if got, want := e.Status().Memo, "on, for any end user (the policy reads input.app, input.operation)"; got != want {
		t.Fatalf("memo status %q, want %q", got, want)
	}
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	in := &Input{App: App{ID: "web"}, Operation: "v.ok", QuotaRemaining: 10, QuotaKnown: true, Now: now}
	first := e.Decide(ctx, in)
	// The policy reads neither the quota nor the time: the same decision, not
	// evaluated again, under a fresh decision id.
	in.QuotaRemaining, in.Now = 9, now.Add(time.Hour)
	second := e.Decide(ctx, in)
	if hits := memoHits(t, reg); hits != 1 {
		t.Fatalf("memo hits = %v after an input that differs only in unread keys, want 1", hits)
	}
	if second.ID == first.ID || second.ID == "" || second.Revision != e.Revision() {
		t.Errorf("memoised decision ids %q then %q, revision %q", first.ID, second.ID, second.Revision)
	}
	if !reflect.DeepEqual(first.Reasons, second.Reasons) || first.Allow != second.Allow {
		t.Errorf("memoised decision %+v differs from the evaluated %+v", second, first)
	}
	// A change in a read key is a new question.
	in.App.ID = "mobile"
	if d := e.Decide(ctx, in); d.Reasons[0] != "mobile" {
		t.Errorf("after the app changed the decision names %v", d.Reasons)
	}
	in.App.ID, in.Operation = "web", "v.other"
	if d := e.Decide(ctx, in); d.Allow {
		t.Error("after the operation changed the memoised allow was given again")
	}
	if hits := memoHits(t, reg); hits != 1 {
		t.Errorf("memo hits = %v, want still 1", hits)
	}
}

func TestMemoIsOffForNondeterministicPolicies(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"time.now_ns", `package consentgate

decision := {"allow": false, "reasons": [sprintf("%d", [time.now_ns()])]}
`, "off: the policy calls time.now_ns"},
		{"rand.intn in a function", `package consentgate

pick(n) := rand.intn("x", n)

decision := {"allow": false, "reasons": [sprintf("%d", [pick(1000000)])]}
`, "off: the policy calls rand.intn"},
		// Not marked nondeterministic by OPA, but it checks validity against the clock.
		{"x509 verification", `package consentgate

default verified := "no chain"

verified := crypto.x509.parse_and_verify_certificates(input.chain) if input.chain

decision := {"allow": false, "reasons": [sprintf("%v", [verified])]}
`, "off: the policy calls crypto.x509.parse_and_verify_certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e, _ := newTestEngine(t, tt.src, reg)
			if got := e.Status().Memo; !strings.HasPrefix(got, tt.want) {
				t.Fatalf("memo status %q, want it to start with %q", got, tt.want)
			}
			in := &Input{App: App{ID: "web"}, Now: time.Now()}
			e.Decide(context.Background(), in)
			e.Decide(context.Background(), in)
			if hits := memoHits(t, reg); hits != 0 {
				t.Errorf("memo hits = %v for a nondeterministic policy", hits)
			}
		})
	}
}

func TestMemoReadsWholeInput(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, _ := newTestEngine(t, `package consentgate

decision := {"allow": false, "reasons": [sprintf("%v", [object.get(input, "quota", {})])]}
`, reg)
	if got := e.Status().Memo; got != "on, per end user (the policy reads the whole input)" {
		t.Fatalf("memo status %q", got)
	}
	in := &Input{QuotaRemaining: 3, QuotaKnown: true}
	a := e.Decide(context.Background(), in)
	in.QuotaRemaining = 2
	b := e.Decide(context.Background(), in)
	if reflect.DeepEqual(a.Reasons, b.Reasons) {
		t.Errorf("a policy reading the whole input got a memoised answer for another quota: %v", b.Reasons)
	}
}

func TestMemoNeverKeepsFailures(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, _ := newTestEngine(t, testPolicy, reg)
	e.opts.Timeout = 100 * time.Millisecond
	in := &Input{App: App{ID: "web"}, Operation: "v.slow"}
	for range 2 {
		if d := e.Decide(context.Background(), in); d.Reasons[0] != ReasonTimeout {
			t.Fatalf("decision %v, want a timeout", d.Reasons)
		}
	}
	in.Operation = "v.error"
	e.Decide(context.Background(), in)
	e.Decide(context.Background(), in)
	if hits := memoHits(t, reg); hits != 0 {
		t.Errorf("memo hits = %v: a failure to decide was remembered", hits)
	}
}

func TestMemoStartsEmptyAfterReload(t *testing.T) {
	e, dir := newTestEngine(t, memoPolicy, nil)
	in := &Input{App: App{ID: "web"}, Operation: "v.ok"}
	if d := e.Decide(context.Background(), in); !d.Allow {
		t.Fatal("first revision denies")
	}
	writePolicy(t, dir, "policy.rego", `package consentgate

decision := {"allow": false, "reasons": ["revision 2"]}
`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(context.Background(), in); d.Allow || d.Reasons[0] != "revision 2" {
		t.Errorf("after a reload the decision is %v %v", d.Allow, d.Reasons)
	}
}

func TestMemoBound(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", memoPolicy)
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}, MemoEntries: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		e.Decide(context.Background(), &Input{App: App{ID: fmt.Sprint(i)}})
		if n := len(e.cur.Load().memo.m); n > 3 {
			t.Fatalf("the memo holds %d decisions, bound 3", n)
		}
	}
}

// TestCanonicalKeysAreUnambiguous lists inputs that differ only in ways a
// careless encoding would blur; each must get its own key.
func TestCanonicalKeysAreUnambiguous(t *testing.T) {
	values := []any{
		nil, "", "a", "ab", "1", 1, 1.5, json.Number("2"), true, false,
		[]any{}, []any{"ab"}, []any{"a", "b"}, []any{[]any{"a"}, "b"}, []string{"a", "b"},
		map[string]any{}, map[string]any{"a": "bc"}, map[string]any{"ab": "c"}, map[string]any{"a": nil},
		map[string]any{"a": []any{}}, map[string]any{"a": map[string]any{}},
	}
	mo := &memo{all: true}
	seen := map[[32]byte]any{}
	for _, v := range values {
		k, ok := mo.key(map[string]any{"x": v})
		if !ok {
			t.Fatalf("%#v: no key", v)
		}
		// []string and []any with the same strings are the same JSON: they
		// may share a key.
		if prev, dup := seen[k]; dup && fmt.Sprint(prev) != fmt.Sprint(v) {
			t.Errorf("%#v and %#v share a key", prev, v)
		}
		seen[k] = v
	}
	sel := &memo{reads: []string{"a", "b"}}
	k1, _ := sel.key(map[string]any{"a": nil})
	k2, _ := sel.key(map[string]any{})
	if k1 == k2 {
		t.Error("a null input.a and an absent input.a share a key")
	}
	if _, ok := mo.key(map[string]any{"x": struct{}{}}); ok {
		t.Error("a value the encoding does not know got a key")
	}
}

// TestShippedPolicyMemoAgreesWithEvaluation asks the shipped policy many
// random variations of a call, with and without the memo: every answer must be
// the same. A part of the input the memo wrongly thought unread would show here
// as a stale answer.
func TestShippedPolicyMemoAgreesWithEvaluation(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	opts := Options{Source: Source{Dir: "../configs/policies"}, Timeout: 5 * time.Second, Registerer: reg}
	memoised, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.MemoEntries, opts.Registerer = -1, nil
	plain, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := memoised.Status().Memo
	for _, k := range []string{"input.app", "input.consent", "input.now", "input.purpose", "input.fields"} {
		if !strings.Contains(st, k) {
			t.Errorf("memo status %q does not list %s", st, k)
		}
	}
	if strings.Contains(st, "input.quota") {
		t.Errorf("memo status %q lists input.quota, which the shipped policy does not read", st)
	}
	if got := plain.Status().Memo; got != "off: disabled" {
		t.Errorf("memo status with MemoEntries -1: %q", got)
	}

	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, uint64(w)))
			pick := func(s ...string) string { return s[rng.IntN(len(s))] }
			subset := func(s ...string) []string {
				var out []string
				for _, v := range s {
					if rng.IntN(2) == 0 {
						out = append(out, v)
					}
				}
				return out
			}
			for i := range 150 {
				// A call that passes, then up to two random changes that may
				// spoil it, so both allows and denies occur.
				app := pick("onboarding-web", "aml-screening-batch")
				purpose := map[string]string{"onboarding-web": "kyc-onboarding", "aml-screening-batch": "aml-screening"}[app]
				in := &Input{
					App:    App{ID: app, Role: "app"},
					Vendor: pick("airbank", "kb"), Operation: pick("airbank.personalData", "kb.identity"), Method: "GET",
					Path: "/p", Body: "json", Purpose: purpose, ConsentID: "c1", QuotaRemaining: rng.IntN(5), QuotaKnown: rng.IntN(2) == 0,
					ResponseFields: map[string]string{"names": "identity", "birthNumber": "national_id", "birthDate": "identity",
						"permanentAddress.street": "address", "politicallyExposedPerson": "pep", "status": "metadata"},
					RequestFields: map[string]string{"photo": "biometric", "clientId": "metadata"},
					Present:       subset("photo", "clientId"),
					Now:           base.Add(time.Duration(rng.IntN(2)) * time.Second),
					Consent: &Consent{ID: "c1", App: app, Subject: "h", Vendors: []string{"airbank", "kb"},
						Purposes: []string{purpose}, Categories: append([]string{"identity"}, subset("address", "national_id", "pep", "biometric")...),
						Status: "active", GrantedAt: base.Add(-time.Hour), ExpiresAt: base.Add(time.Duration(1+rng.IntN(3)) * time.Second)},
				}
				for range rng.IntN(3) {
					spoil(rng, in)
				}
				// Ask, then ask again with one part changed: an input that
				// matches a remembered one in all but that part is where a
				// wrongly unread part would give a stale answer.
				for round := range 2 {
					if round == 1 {
						mutate(rng, in)
					}
					got, want := memoised.Decide(ctx, in), plain.Decide(ctx, in)
					if got.Err != "" || want.Err != "" {
						t.Errorf("worker %d call %d: evaluation failed: %s %s", w, i, got.Err, want.Err)
						return
					}
					got.ID, want.ID = "", ""
					if !reflect.DeepEqual(got, want) {
						t.Errorf("worker %d call %d round %d: memoised %+v, evaluated %+v", w, i, round, got, want)
						return
					}
					if got.Allow {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	// The variations must reach allows too, or the comparison proves little.
	t.Logf("allowed %d", allowed)
	if allowed == 0 {
		t.Error("no variation was allowed")
	}
	if hits := memoHits(t, reg); hits == 0 {
		t.Error("no variation was answered from the memo")
	}
}

// mutate changes one part of in that the shipped policy reads, or the quota,
// which it does not.
func mutate(rng *rand.Rand, in *Input) {
	switch rng.IntN(9) {
	case 8:
		in.Erasure = !in.Erasure
	case 7:
		in.Body = "binary"
	case 0:
		in.Now = in.Now.Add(time.Second)
	case 1:
		if in.Consent != nil {
			in.Consent.ExpiresAt = in.Now
		}
	case 2:
		in.ResponseFields = map[string]string{"names": "identity", "birthNumber": "identity", "status": "metadata"}
	case 3:
		in.RequestFields = map[string]string{"photo": "identity", "clientId": "metadata"}
	case 4:
		in.Present = append(in.Present, "extra")
	case 5:
		in.QuotaRemaining++
	case 6:
		if in.Consent != nil {
			in.Consent.Categories = append(in.Consent.Categories, "address", "identity")
		}
	}
}

// spoil changes one part of in in a way that may deny it.
func spoil(rng *rand.Rand, in *Input) {
	if in.Consent == nil {
		return
	}
	switch rng.IntN(7) {
	case 0:
		in.App.ID = "stranger"
	case 1:
		in.Purpose = []string{"", "age-verification", "unknown-purpose"}[rng.IntN(3)]
	case 2:
		in.Consent.Status = []string{"revoked", "expired", "paused"}[rng.IntN(3)]
	case 3:
		in.Consent.Vendors = in.Consent.Vendors[:1]
	case 4:
		in.Consent.ID = "c2"
	case 5:
		in.Consent.App = "pfm-mobile"
	case 6:
		in.ConsentID, in.Consent = "", nil
	}
}
