package consent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/secrets"
	"github.com/consentgate/consentgate/tokens"
)

const tokenizedBirthNumber = "915714/4238"

var testIndexKey = []byte("the token vault's index key, for tests")

func testWrapper(t testing.TB) tokens.Wrapper {
	t.Helper()
	k, err := secrets.ParseSealKey(strings.Repeat("4f", 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The registry keeps the token vault: tokens survive a restart; the store
// never holds the value;
// revoking the consent destroys its data key, in the same transaction, and
// the hook hears of it; no key is made for a consent that is not active.
func TestTokenVaultInTheRegistry(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		st := newTestStore(t, b)
		first, err := st.tryOpen(t, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		c, err := first.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		bind := tokens.Binding{ConsentID: c.ID, Subject: c.Subject, App: "web", Category: "national_id", Vendor: "airbank", Field: "birthNumber"}
		v := tokens.New(first, testWrapper(t), nil, testIndexKey)
		tok, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindPreserve}, false, tokenizedBirthNumber)
		if err != nil {
			t.Fatal(err)
		}
		opaque, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, true, tokenizedBirthNumber)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		r := st.open(t, o)
		v = tokens.New(r, testWrapper(t), nil, testIndexKey)
		for _, tk := range []string{tok, opaque} {
			if got, _, err := v.Reveal(ctx, tk, c.Subject, "web"); err != nil || got != tokenizedBirthNumber {
				t.Fatalf("after a restart %q reveals %q, %v", tk, got, err)
			}
		}
		if again, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, true, tokenizedBirthNumber); err != nil || again != opaque {
			t.Errorf("the deterministic token after a restart: %q, %v; want %q", again, err, opaque)
		}
		if strings.Contains(st.contents(t), tokenizedBirthNumber) {
			t.Error("the store holds the value in clear")
		}
		listed, err := r.TokensOf(ctx, c.ID)
		if err != nil || len(listed) != 2 || listed[0].ConsentID != c.ID || listed[0].Field != "birthNumber" {
			t.Fatalf("TokensOf: %+v, %v", listed, err)
		}
		for _, l := range listed {
			if l.ID != v.ID(tok) && l.ID != v.ID(opaque) {
				t.Errorf("listed id %s is neither token's", l.ID)
			}
		}

		// A new wrapping key: the data key is wrapped again under it, and then
		// opens without the old one.
		next, _ := secrets.ParseSealKey(strings.Repeat("5e", 32))
		if n, err := tokens.New(r, next, testWrapper(t), testIndexKey).Rewrap(ctx); err != nil || n != 1 {
			t.Fatalf("Rewrap: %d, %v", n, err)
		}
		v = tokens.New(r, next, nil, testIndexKey)
		if got, _, err := v.Reveal(ctx, tok, c.Subject, "web"); err != nil || got != tokenizedBirthNumber {
			t.Fatalf("under the new key alone: %q, %v", got, err)
		}

		if _, err := r.Revoke(ctx, "web", roleApp, c.ID); err != nil {
			t.Fatal(err)
		}
		if ch := hooks.seen(); len(ch) == 0 || !ch[len(ch)-1].DataKeyDestroyed {
			t.Errorf("the revocation's change does not say the data key was destroyed: %+v", ch)
		}
		if got, _, err := v.Reveal(ctx, tok, c.Subject, "web"); !errors.Is(err, tokens.ErrShredded) || got != "" {
			t.Errorf("after revocation: %q, %v", got, err)
		}
		if _, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber); !errors.Is(err, tokens.ErrShredded) {
			t.Errorf("tokenize after revocation: %v", err)
		}

		// An expired consent's tokens die with it: its key is destroyed when it is
		// next looked for, and it gets no new one.
		short := testRequest()
		short.TTL = "1h"
		exp, err := r.Create(ctx, "web", short)
		if err != nil {
			t.Fatal(err)
		}
		bind.ConsentID = exp.ID
		lapsing, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber)
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Hour)
		if got, _, err := v.Reveal(ctx, lapsing, c.Subject, "web"); !errors.Is(err, tokens.ErrShredded) || got != "" {
			t.Errorf("reveal under an expired consent: %q, %v", got, err)
		}
		var wrapped []byte
		r.st.view(ctx, func(tx storeTx) (err error) { wrapped, _, err = tx.dataKey(exp.ID); return err })
		if wrapped != nil {
			t.Error("the expired consent's data key is still stored")
		}
		if ch := hooks.seen(); ch[len(ch)-1].Kind != ChangeKeyDestroyed || ch[len(ch)-1].Consent.ID != exp.ID || !ch[len(ch)-1].DataKeyDestroyed {
			t.Errorf("the destruction was not recorded: %+v", ch[len(ch)-1])
		}
		if _, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber); !errors.Is(err, tokens.ErrShredded) {
			t.Errorf("tokenize under an expired consent: %v", err)
		}
	})
}

// An expired consent's data key is destroyed by the next sweep (the erasure
// outbox's look, with or without an erasure plan), with its record, and not
// only when someone next asks for it; an active consent's key is left alone.
func TestExpiredConsentsKeysAreSwept(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r := newTestStore(t, b).open(t, o)
		ctx := t.Context()
		v := tokens.New(r, testWrapper(t), nil, testIndexKey)
		tokenize := func(ttl string) *Consent {
			req := testRequest()
			req.TTL = ttl
			c, err := r.Create(ctx, "web", req)
			if err != nil {
				t.Fatal(err)
			}
			bind := tokens.Binding{ConsentID: c.ID, Subject: c.Subject, App: "web", Category: "national_id", Vendor: "airbank", Field: "birthNumber"}
			if _, err := v.Tokenize(ctx, bind, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber); err != nil {
				t.Fatal(err)
			}
			return c
		}
		lapsing, lasting, brief := tokenize("1h"), tokenize("48h"), tokenize("2h0m30s")
		clk.Add(2 * time.Hour)
		if _, err := r.ClaimErasures(ctx, 16, time.Minute); err != nil {
			t.Fatal(err)
		}
		owners, err := r.DataKeyOwners(ctx)
		if err != nil || len(owners) != 2 || !slices.Contains(owners, lasting.ID) || !slices.Contains(owners, brief.ID) {
			t.Fatalf("data keys held by %v (%v), want only the active consents'", owners, err)
		}
		ch := hooks.seen()
		if len(ch) == 0 || ch[len(ch)-1].Kind != ChangeKeyDestroyed || ch[len(ch)-1].Consent.ID != lapsing.ID {
			t.Errorf("the destruction was not recorded: %+v", ch)
		}
		// The sweep reads every consent holding a key, so it looks once a
		// minute, not at every look at the outbox; a key destroyed once is
		// not recorded again.
		n := len(ch)
		clk.Add(45 * time.Second) // brief has expired
		r.ClaimErasures(ctx, 16, time.Minute)
		if owners, _ := r.DataKeyOwners(ctx); len(owners) != 2 || len(hooks.seen()) != n {
			t.Errorf("swept again within the minute: keys %v, %d new records", owners, len(hooks.seen())-n)
		}
		clk.Add(keySweepEvery)
		r.ClaimErasures(ctx, 16, time.Minute)
		ch = hooks.seen()
		if owners, _ := r.DataKeyOwners(ctx); len(owners) != 1 || owners[0] != lasting.ID || len(ch) != n+1 || ch[n].Consent.ID != brief.ID {
			t.Errorf("after the minute: keys %v, records %+v", owners, ch[n:])
		}
	})
}

// A call budget is the end user's with one app, across their consents; it is
// counted across registries on one store (replicas, restarts), refuses once
// spent until its window ends, and is per key.
func TestSpendCallBudget(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		o := testOptions(clk)
		r, st := mustOpen(t, b, o)
		ctx := t.Context()
		c, err := r.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if ok, _, err := r.Spend(ctx, c.ID, "kb.verifyIdentity", 3, time.Hour); !ok || err != nil {
				t.Fatalf("call %d: %v, %v", i+1, ok, err)
			}
			clk.Add(time.Minute)
		}
		if b == postgresBackend { // another replica counts on
			r = st.open(t, o)
		}
		ok, until, err := r.Spend(ctx, c.ID, "kb.verifyIdentity", 3, time.Hour)
		if ok || err != nil || until.IsZero() {
			t.Fatalf("the fourth call: %v, %v, %v", ok, until, err)
		}
		if ok, _, _ := r.Spend(ctx, c.ID, "other.op", 3, time.Hour); !ok {
			t.Error("another key shares the budget")
		}
		// A new consent of the same end user and app gets no fresh budget;
		// another app's does.
		again, err := r.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := r.Spend(ctx, again.ID, "kb.verifyIdentity", 3, time.Hour); ok {
			t.Error("a new consent of the same end user and app had a fresh budget")
		}
		mobile, err := r.Create(ctx, "mobile", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := r.Spend(ctx, mobile.ID, "kb.verifyIdentity", 3, time.Hour); !ok {
			t.Error("another app's consent shares the budget")
		}
		clk.Add(time.Hour)
		if ok, _, err := r.Spend(ctx, c.ID, "kb.verifyIdentity", 3, time.Hour); !ok || err != nil {
			t.Errorf("after the window: %v, %v", ok, err)
		}
		if _, _, err := r.Spend(ctx, "no-such-consent", "kb.verifyIdentity", 3, time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown consent: %v", err)
		}
	})
}

// Token writes are durable (each committed before Tokenize returns) and, from
// many calls at once, group-committed: b.N tokens from 64 goroutines.
func BenchmarkTokenizeDurable(b *testing.B) {
	clk := newClock()
	r, _ := mustOpen(b, bboltBackend, testOptions(clk))
	c, err := r.Create(b.Context(), "web", testRequest())
	if err != nil {
		b.Fatal(err)
	}
	v := tokens.New(r, testWrapper(b), nil, testIndexKey)
	bind := tokens.Binding{ConsentID: c.ID, Subject: c.Subject, App: "web", Category: "national_id", Vendor: "airbank", Field: "birthNumber"}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Tokenize(b.Context(), bind, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// Erasing an end user withdraws every consent of theirs, of every app: their
// data keys are destroyed, so no token of theirs opens; another end user's
// consent is untouched; erasing again revokes nothing more.
func TestEraseSubject(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newTestStore(t, b).open(t, testOptions(newClock()))
		ctx := t.Context()
		v := tokens.New(r, testWrapper(t), nil, testIndexKey)
		create := func(app, subject string) (*Consent, string) {
			req := testRequest()
			req.Subject = subject
			c, err := r.Create(ctx, app, req)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := v.Tokenize(ctx, tokens.Binding{ConsentID: c.ID, Subject: c.Subject, App: app, Category: "national_id",
				Vendor: "airbank", Field: "birthNumber"}, tokens.Format{Kind: tokens.KindOpaque}, false, tokenizedBirthNumber)
			if err != nil {
				t.Fatal(err)
			}
			return c, tok
		}
		web, webTok := create("web", "jana")
		mobile, mobileTok := create("mobile", "jana")
		other, otherTok := create("web", "petr")
		revoked, err := r.EraseSubject(ctx, "secops", "jana")
		if err != nil || len(revoked) != 2 {
			t.Fatalf("EraseSubject: %d revoked, %v", len(revoked), err)
		}
		for _, x := range []struct {
			c   *Consent
			tok string
		}{{web, webTok}, {mobile, mobileTok}} {
			if _, _, err := v.Reveal(ctx, x.tok, x.c.Subject, x.c.App); !errors.Is(err, tokens.ErrShredded) {
				t.Errorf("a token of the erased end user under %s: %v", x.c.App, err)
			}
			if got, _ := r.Get(ctx, x.c.ID); got.Status != Revoked || got.RevokedBy != "secops" {
				t.Errorf("consent %s: %s by %s", x.c.ID, got.Status, got.RevokedBy)
			}
		}
		if got, _, err := v.Reveal(ctx, otherTok, other.Subject, "web"); err != nil || got != tokenizedBirthNumber {
			t.Errorf("another end user's token: %q, %v", got, err)
		}
		if again, err := r.EraseSubject(ctx, "secops", "jana"); err != nil || len(again) != 0 {
			t.Errorf("erasing again: %d revoked, %v", len(again), err)
		}
	})
}
