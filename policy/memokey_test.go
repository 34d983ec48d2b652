package policy

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"
)

// The memo key written from the struct is the key of the map OPA evaluates,
// byte for byte, for any input and any set of names the policy reads: a
// difference could answer one input with another's remembered decision.
func TestMemoKeyOfMatchesTheEvaluatedInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := append(append([]string(nil), inputNames...), "not_an_input_key")
	for i := range 3000 {
		in := randomInput(rng)
		for _, mo := range []*memo{
			{all: true},
			{reads: pick(rng, names)},
		} {
			want, ok := mo.key(in.value())
			got, gotOK := mo.keyOf(in)
			if !ok || !gotOK || got != want {
				t.Fatalf("input %d (%+v), reads %v, all %v: keyOf %x, key %x", i, in, mo.reads, mo.all, got[:4], want[:4])
			}
		}
	}
}

// Inputs that differ anywhere the policy reads get different keys.
func TestMemoKeyOfSeparatesInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mo := &memo{all: true}
	seen := map[[sha256.Size]byte]string{}
	for range 2000 {
		in := randomInput(rng)
		k, _ := mo.keyOf(in)
		enc := string(func() []byte { b, _ := appendCanonical(nil, in.value()); return b }())
		if prev, ok := seen[k]; ok && prev != enc {
			t.Fatal("two different inputs share a memo key")
		}
		seen[k] = enc
	}
}

func pick(rng *rand.Rand, names []string) []string {
	var out []string
	for _, n := range names {
		if rng.IntN(2) == 0 {
			out = append(out, n)
		}
	}
	return out // already sorted, as newMemo sorts them
}

func randomInput(rng *rand.Rand) *Input {
	s := func() string {
		opts := []string{"", "a", "kb", "airbank.personalData", "kyc-onboarding", "ž/?\x00\"", "onboarding-web", "  "}
		return opts[rng.IntN(len(opts))]
	}
	list := func() []string {
		if rng.IntN(4) == 0 {
			return nil
		}
		out := make([]string, rng.IntN(4))
		for i := range out {
			out[i] = s()
		}
		return out
	}
	fields := func() map[string]string {
		if rng.IntN(4) == 0 {
			return nil
		}
		m := map[string]string{}
		for range rng.IntN(6) {
			m[s()+s()] = s()
		}
		return m
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.FixedZone("x", rng.IntN(7)*3600)).Add(time.Duration(rng.IntN(100000)) * time.Second)
	in := &Input{App: App{ID: s(), Role: s(), URI: s()}, Vendor: s(), Operation: s(), Method: s(), Path: s(), Body: s(),
		Erasure: rng.IntN(2) == 0, Class: s(), Purpose: s(), ConsentID: s(), RequestFields: fields(), ResponseFields: fields(),
		Identifiers: list(), Present: list(), Reveals: list(), QuotaRemaining: rng.IntN(2000) - 1000, QuotaKnown: rng.IntN(2) == 0, Now: at}
	if rng.IntN(3) > 0 {
		in.Consent = &Consent{ID: s(), App: s(), Subject: s(), Vendors: list(), Purposes: list(), Categories: list(),
			Status: s(), GrantedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Duration(rng.IntN(1e6)) * time.Second)}
	}
	return in
}
