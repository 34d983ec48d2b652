package consent

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestResourcesBelongToTheirSubjectAndApp(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, st := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		create := func(app, subject string) *Consent {
			t.Helper()
			req := testRequest()
			req.Subject = subject
			c, err := r.Create(ctx, app, req)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		mine := create("web", testSubject)
		mineAgain := create("web", testSubject)
		other := create("web", "another-person")
		otherApp := create("mobile", testSubject)

		user := Resource{Vendor: "banqware", Kind: "user", ID: "u-1", ConsentID: mine.ID}
		got, err := r.BindResource(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != mine.Subject || got.App != "web" || !got.CreatedAt.Equal(clk.Now()) {
			t.Errorf("bound %+v", got)
		}
		// The same person and app under another of their consents: the first binding stands.
		clk.Add(time.Second)
		if again, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "user", ID: "u-1", ConsentID: mineAgain.ID}); err != nil || again.ConsentID != mine.ID {
			t.Errorf("binding again: %+v, %v", again, err)
		}
		for name, c := range map[string]*Consent{"another person": other, "another app": otherApp} {
			if _, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "user", ID: "u-1", ConsentID: c.ID}); !errors.Is(err, ErrResourceTaken) {
				t.Errorf("%s took the id: %v", name, err)
			}
		}
		// Ids are per vendor and kind.
		for _, res := range []Resource{{Vendor: "banqware", Kind: "consent", ID: "u-1", ConsentID: other.ID}, {Vendor: "finid", Kind: "user", ID: "u-1", ConsentID: other.ID}} {
			if _, err := r.BindResource(ctx, res); err != nil {
				t.Errorf("%s %s: %v", res.Vendor, res.Kind, err)
			}
		}
		clk.Add(time.Second)
		if _, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "consent", ID: "c-1", ConsentID: mine.ID}); err != nil {
			t.Fatal(err)
		}
		// A caller that names another app's consent binds nothing to it.
		if _, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "user", ID: "u-3", ConsentID: otherApp.ID, App: "web"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("bound to another app's consent: %v", err)
		}
		if _, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "user", ID: "u-2", ConsentID: "no-such-consent"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("bound to an unknown consent: %v", err)
		}
		if _, err := r.BindResource(ctx, Resource{Vendor: "banqware", Kind: "user", ConsentID: mine.ID}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bound an empty id: %v", err)
		}
		if _, err := r.Resource(ctx, "banqware", "user", "u-404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		list, err := r.Resources(ctx, mine.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, res := range list {
			ids = append(ids, res.Kind+"/"+res.ID)
		}
		if !slices.Equal(ids, []string{"user/u-1", "consent/c-1"}) {
			t.Errorf("resources of the consent: %v", ids)
		}
		// A revoked consent keeps its resources: they are what erasure deletes.
		if _, err := r.Revoke(ctx, "web", "app", mine.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Resource(ctx, "banqware", "user", "u-1"); err != nil || got.ConsentID != mine.ID {
			t.Errorf("after revocation: %+v, %v", got, err)
		}

		// A restart (bbolt) or another replica (PostgreSQL) sees the same bindings.
		r.Close()
		r2 := st.open(t, testOptions(clk))
		if got, err := r2.Resource(ctx, "banqware", "user", "u-1"); err != nil || got.Subject != mine.Subject || got.App != "web" {
			t.Errorf("reopened: %+v, %v", got, err)
		}
	})
}
