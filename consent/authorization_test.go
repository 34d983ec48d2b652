package consent

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

func pendingFor(c *Consent, vendor string, clk *clock) Pending {
	return Pending{ConsentID: c.ID, App: c.App, Vendor: vendor, ReturnTo: "https://app.test/done",
		Verifier: []byte("sealed-verifier"), ExpiresAt: clk.Now().Add(10 * time.Minute)}
}

func TestAuthorizationStateIsSingleUseAndExpires(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		c, err := r.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		p := pendingFor(c, "airbank", clk)
		if err := r.BeginAuthorization(ctx, []byte("k1"), p); err != nil {
			t.Fatal(err)
		}
		if err := r.BeginAuthorization(ctx, []byte("k1"), p); !errors.Is(err, ErrConflict) {
			t.Errorf("reusing a key: %v, want ErrConflict", err)
		}
		got, err := r.TakeAuthorization(ctx, []byte("k1"))
		if err != nil {
			t.Fatal(err)
		}
		if got.ConsentID != c.ID || got.App != "web" || got.Vendor != "airbank" || got.ReturnTo != p.ReturnTo ||
			!bytes.Equal(got.Verifier, p.Verifier) || !got.ExpiresAt.Equal(p.ExpiresAt) {
			t.Errorf("taken %+v, want %+v", got, p)
		}
		if _, err := r.TakeAuthorization(ctx, []byte("k1")); !errors.Is(err, ErrUnknownState) {
			t.Errorf("second take: %v, want ErrUnknownState", err)
		}
		if _, err := r.TakeAuthorization(ctx, []byte("never")); !errors.Is(err, ErrUnknownState) {
			t.Errorf("unknown key: %v, want ErrUnknownState", err)
		}

		// Expired: refused, and gone.
		if err := r.BeginAuthorization(ctx, []byte("k2"), p); err != nil {
			t.Fatal(err)
		}
		clk.Add(10 * time.Minute)
		if _, err := r.TakeAuthorization(ctx, []byte("k2")); !errors.Is(err, ErrStateExpired) {
			t.Errorf("expired take: %v, want ErrStateExpired", err)
		}
		if _, err := r.TakeAuthorization(ctx, []byte("k2")); !errors.Is(err, ErrUnknownState) {
			t.Errorf("expired state taken twice: %v, want ErrUnknownState", err)
		}

		// Abandoned authorizations are swept by the next start.
		p = pendingFor(c, "airbank", clk)
		for _, k := range []string{"a", "b"} {
			if err := r.BeginAuthorization(ctx, []byte(k), p); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(11 * time.Minute)
		if err := r.BeginAuthorization(ctx, []byte("c"), pendingFor(c, "airbank", clk)); err != nil {
			t.Fatal(err)
		}
		if n := raw(t, r).pending; n != 1 {
			t.Errorf("%d pending authorizations after a sweep, want 1", n)
		}
	})
}

func TestBeginAuthorizationChecksTheConsent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		mine, err := r.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := r.Create(ctx, "other", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		revoked, _ := r.Create(ctx, "web", testRequest())
		if _, err := r.Revoke(ctx, "web", "app", revoked.ID); err != nil {
			t.Fatal(err)
		}
		short := testRequest()
		short.TTL = "1m"
		expired, _ := r.Create(ctx, "web", short)
		clk.Add(2 * time.Minute)

		tests := []struct {
			name    string
			consent *Consent
			app     string
			vendor  string
			want    error
		}{
			{"own active consent", mine, "web", "airbank", nil},
			{"another app's consent", theirs, "web", "airbank", ErrNotFound},
			{"unknown consent", &Consent{ID: "nope"}, "web", "airbank", ErrNotFound},
			{"revoked", revoked, "web", "airbank", ErrNotActive},
			{"expired", expired, "web", "airbank", ErrNotActive},
			{"vendor not in consent", mine, "web", "kb", ErrInvalid},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := pendingFor(tt.consent, tt.vendor, clk)
				p.App = tt.app
				err := r.BeginAuthorization(ctx, []byte{byte(i)}, p)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			})
		}
		if n := raw(t, r).pending; n != 1 {
			t.Errorf("%d pending authorizations stored, want only the allowed one", n)
		}
	})
}

func TestCompleteAuthorization(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r, _ := mustOpen(t, b, o)
		ctx := t.Context()
		req := testRequest()
		req.Vendors = []string{"airbank", "kb"}
		c, err := r.Create(ctx, "web", req)
		if err != nil {
			t.Fatal(err)
		}
		a := Authorization{Vendor: "kb", AuthorizedAt: clk.Now(), Scopes: []string{"client-identity"}}
		if err := r.CompleteAuthorization(ctx, "other", c.ID, a, []byte("sealed-1")); !errors.Is(err, ErrNotFound) {
			t.Errorf("another app completing: %v, want ErrNotFound", err)
		}
		if err := r.CompleteAuthorization(ctx, "web", c.ID, a, []byte("sealed-1")); err != nil {
			t.Fatal(err)
		}
		if tok, err := r.Tokens(ctx, c.ID, "kb"); err != nil || string(tok) != "sealed-1" {
			t.Errorf("Tokens = %q, %v", tok, err)
		}
		if _, err := r.Tokens(ctx, c.ID, "airbank"); !errors.Is(err, ErrNoTokens) {
			t.Errorf("tokens of a vendor never authorised: %v, want ErrNoTokens", err)
		}
		got, _ := r.Get(ctx, c.ID)
		if len(got.Authorizations) != 1 || got.Authorizations[0].Vendor != "kb" || !got.Authorizations[0].AuthorizedAt.Equal(clk.Now()) ||
			!slices.Equal(got.Authorizations[0].Scopes, a.Scopes) {
			t.Errorf("evidence %+v", got.Authorizations)
		}
		ch := hooks.seen()
		if last := ch[len(ch)-1]; last.Kind != ChangeAuthorized || last.Vendor != "kb" || !slices.Equal(last.Scopes, a.Scopes) || last.Actor != "web" {
			t.Errorf("hook saw %+v", last)
		}

		// Again: the tokens and the evidence are replaced, not added.
		clk.Add(time.Hour)
		a.AuthorizedAt = clk.Now()
		if err := r.CompleteAuthorization(ctx, "web", c.ID, a, []byte("sealed-2")); err != nil {
			t.Fatal(err)
		}
		got, _ = r.Get(ctx, c.ID)
		if tok, _ := r.Tokens(ctx, c.ID, "kb"); string(tok) != "sealed-2" || len(got.Authorizations) != 1 || !got.Authorizations[0].AuthorizedAt.Equal(clk.Now()) {
			t.Errorf("after a second authorization: tokens %q, evidence %+v", tok, got.Authorizations)
		}

		// A change the audit log cannot record is not made.
		hooks.fail = errors.New("audit down")
		if err := r.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "airbank", AuthorizedAt: clk.Now()}, []byte("sealed-3")); !errors.Is(err, ErrHook) {
			t.Fatalf("with a failing hook: %v, want ErrHook", err)
		}
		if _, err := r.Tokens(ctx, c.ID, "airbank"); !errors.Is(err, ErrNoTokens) {
			t.Errorf("tokens stored although the hook failed: %v", err)
		}
		hooks.fail = nil

		// Revoked while the user was at the vendor: no tokens.
		if _, err := r.Revoke(ctx, "web", "app", c.ID); err != nil {
			t.Fatal(err)
		}
		if err := r.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "airbank", AuthorizedAt: clk.Now()}, []byte("sealed-4")); !errors.Is(err, ErrNotActive) {
			t.Errorf("completing a revoked consent: %v, want ErrNotActive", err)
		}
	})
}

func TestRevokeDeletesTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r, st := mustOpen(t, b, o)
		ctx := t.Context()
		req := testRequest()
		req.Vendors = []string{"airbank", "kb"}
		c, _ := r.Create(ctx, "web", req)
		other, _ := r.Create(ctx, "web", req)
		for _, v := range []string{"airbank", "kb"} {
			for _, id := range []string{c.ID, other.ID} {
				if err := r.CompleteAuthorization(ctx, "web", id, Authorization{Vendor: v, AuthorizedAt: clk.Now()}, []byte("tok-"+id+"-"+v)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := r.Revoke(ctx, "web", "app", c.ID); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"airbank", "kb"} {
			if _, err := r.Tokens(ctx, c.ID, v); !errors.Is(err, ErrNoTokens) {
				t.Errorf("%s tokens after revocation: %v", v, err)
			}
			if tok, err := r.Tokens(ctx, other.ID, v); err != nil || string(tok) != "tok-"+other.ID+"-"+v {
				t.Errorf("another consent's %s tokens: %q, %v", v, tok, err)
			}
		}
		ch := hooks.seen()
		if last := ch[len(ch)-1]; last.Kind != ChangeRevoked || !slices.Equal(last.TokensDeleted, []string{"airbank", "kb"}) {
			t.Errorf("revocation change %+v", last)
		}
		// A refresh that finishes after the revocation does not bring them back.
		if err := r.SwapTokens(ctx, c.ID, "kb", []byte("tok-"+c.ID+"-kb"), []byte("refreshed")); !errors.Is(err, ErrNoTokens) {
			t.Errorf("swap after revocation: %v, want ErrNoTokens", err)
		}
		// What the store holds, read past the registry: the revoked consent's
		// tokens are gone (the values were sealed by the gateway; bbolt may keep freed
		// pages until it reuses them, which is why tokens are only ever stored sealed).
		if left, want := raw(t, r).tokens, []string{other.ID + "/airbank", other.ID + "/kb"}; !slices.Equal(left, want) {
			t.Errorf("tokens left in the store: %v, want %v", left, want)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r2 := st.open(t, o)
		if _, err := r2.Tokens(ctx, other.ID, "kb"); err != nil {
			t.Errorf("reopened: %v", err)
		}
	})
}

func TestSwapTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		c, _ := r.Create(ctx, "web", testRequest())
		if err := r.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "airbank", AuthorizedAt: clk.Now()}, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		if err := r.SwapTokens(ctx, c.ID, "airbank", []byte("v1"), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		// A second refresh that read v1 lost the race: nothing changes.
		if err := r.SwapTokens(ctx, c.ID, "airbank", []byte("v1"), []byte("v3")); !errors.Is(err, ErrNoTokens) {
			t.Errorf("stale swap: %v, want ErrNoTokens", err)
		}
		if tok, _ := r.Tokens(ctx, c.ID, "airbank"); string(tok) != "v2" {
			t.Errorf("tokens %q after a stale swap, want v2", tok)
		}
		if err := r.SwapTokens(ctx, c.ID, "airbank", []byte("v2"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Tokens(ctx, c.ID, "airbank"); !errors.Is(err, ErrNoTokens) {
			t.Errorf("after removal: %v", err)
		}
	})
}
