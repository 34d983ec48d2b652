package consent

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r, _ := mustOpen(t, b, o)
		ctx := t.Context()

		req := testRequest()
		req.Vendors = []string{"kb", "airbank", "kb"} // stored sorted, once each
		c, err := r.Create(ctx, "onboarding-web", req)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == "" || c.App != "onboarding-web" || c.Status != Active || c.Subject != r.SubjectHMAC(testSubject) {
			t.Fatalf("created %+v", c)
		}
		if !slices.Equal(c.Vendors, []string{"airbank", "kb"}) {
			t.Errorf("vendors %v, want [airbank kb]", c.Vendors)
		}
		if !c.GrantedAt.Equal(clk.Now()) || !c.ExpiresAt.Equal(clk.Now().Add(720*time.Hour)) {
			t.Errorf("granted %s expires %s", c.GrantedAt, c.ExpiresAt)
		}

		got, err := r.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID || got.Status != Active || got.Evidence != req.Evidence || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("Get = %+v, want %+v", got, c)
		}

		list, err := r.BySubject(ctx, "onboarding-web", testSubject)
		if err != nil || len(list) != 1 || list[0].ID != c.ID {
			t.Fatalf("BySubject = %+v, %v", list, err)
		}
		if none, err := r.BySubject(ctx, "onboarding-web", "someone-else"); err != nil || none == nil || len(none) != 0 {
			t.Errorf("BySubject(other subject) = %#v, %v; want an empty list", none, err)
		}

		clk.Add(time.Minute)
		rev, err := r.Revoke(ctx, "onboarding-web", "app", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rev.Status != Revoked || rev.RevokedBy != "onboarding-web" || rev.RevokedAt == nil || !rev.RevokedAt.Equal(clk.Now()) {
			t.Fatalf("revoked %+v", rev)
		}
		// The very next Get sees it: there is no cache between the gateway and the file.
		if got, err := r.Get(ctx, c.ID); err != nil || got.Status != Revoked {
			t.Fatalf("Get after revoke = %+v, %v", got, err)
		}

		// Revoking again changes nothing and records nothing.
		clk.Add(time.Minute)
		again, err := r.Revoke(ctx, "onboarding-web", "app", c.ID)
		if err != nil || !again.RevokedAt.Equal(*rev.RevokedAt) || again.Status != Revoked {
			t.Fatalf("second revoke = %+v, %v", again, err)
		}

		seen := hooks.seen()
		if len(seen) != 2 {
			t.Fatalf("hook saw %d changes, want 2: %+v", len(seen), seen)
		}
		if seen[0].Kind != ChangeCreated || seen[0].Actor != "onboarding-web" || seen[0].Role != "app" || seen[0].Consent.ID != c.ID {
			t.Errorf("create change %+v", seen[0])
		}
		if seen[1].Kind != ChangeRevoked || seen[1].Consent.Status != Revoked || seen[1].Actor != "onboarding-web" {
			t.Errorf("revoke change %+v", seen[1])
		}
		if seen[0].Consent.Subject != c.Subject {
			t.Errorf("hook got subject %q, want the HMAC", seen[0].Consent.Subject)
		}

		if _, err := r.Get(ctx, "no-such-id"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) err = %v, want ErrNotFound", err)
		}
	})
}

func TestExpiryIsComputedOnRead(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		req := testRequest()
		req.TTL = "1h"
		c, err := r.Create(ctx, "onboarding-web", req)
		if err != nil {
			t.Fatal(err)
		}

		steps := []struct {
			advance time.Duration
			want    string
		}{
			{59 * time.Minute, Active},
			{time.Minute - time.Nanosecond, Active},
			{time.Nanosecond, Expired}, // expires_at == now is expired
			{24 * time.Hour, Expired},
		}
		for _, s := range steps {
			clk.Add(s.advance)
			got, err := r.Get(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			list, err := r.BySubject(ctx, "", testSubject)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != s.want || list[0].Status != s.want {
				t.Errorf("at %s: Get %q, BySubject %q, want %q", clk.Now(), got.Status, list[0].Status, s.want)
			}
		}

		// Nothing rewrote the store: expired is a reading, not a stored state.
		if stored := raw(t, r).consents[c.ID]; stored.Status != Active {
			t.Errorf("stored %+v", stored)
		}

		// Revoked wins over expired.
		rev, err := r.Revoke(ctx, "onboarding-web", "app", c.ID)
		if err != nil || rev.Status != Revoked {
			t.Fatalf("revoking an expired consent = %+v, %v", rev, err)
		}
		if got, _ := r.Get(ctx, c.ID); got.Status != Revoked {
			t.Errorf("status %q, want revoked", got.Status)
		}
	})
}

func TestAppIsolation(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, testOptions(clk))
		ctx := t.Context()
		mine, err := r.Create(ctx, "onboarding-web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := r.Create(ctx, "loans-app", testRequest()) // the same user, another app
		if err != nil {
			t.Fatal(err)
		}

		// Another app's consent reads exactly like one that does not exist.
		_, errOther := r.Revoke(ctx, "loans-app", "app", mine.ID)
		_, errNone := r.Revoke(ctx, "loans-app", "app", "00000000-0000-0000-0000-000000000000")
		if !errors.Is(errOther, ErrNotFound) || !errors.Is(errNone, ErrNotFound) {
			t.Fatalf("revoking another app's consent: %v; an unknown one: %v", errOther, errNone)
		}
		if strings.Replace(errOther.Error(), mine.ID, "ID", 1) != strings.Replace(errNone.Error(), "00000000-0000-0000-0000-000000000000", "ID", 1) {
			t.Errorf("errors differ: %q vs %q", errOther, errNone)
		}
		if got, _ := r.Get(ctx, mine.ID); got.Status != Active {
			t.Fatalf("another app's revoke took effect: %+v", got)
		}

		for app, want := range map[string][]string{
			"onboarding-web": {mine.ID},
			"loans-app":      {theirs.ID},
			"":               {mine.ID, theirs.ID},
			"nobody":         {},
		} {
			list, err := r.BySubject(ctx, app, testSubject)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range list {
				ids = append(ids, c.ID)
			}
			slices.Sort(ids)
			slices.Sort(want)
			if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
				t.Errorf("BySubject(%q) = %v, want %v", app, ids, want)
			}
		}

		if _, err := r.Revoke(ctx, "auditor-1", "auditor", mine.ID); !errors.Is(err, ErrForbidden) {
			t.Errorf("auditor revoke err = %v, want ErrForbidden", err)
		}
		rev, err := r.Revoke(ctx, "secops", "admin", theirs.ID)
		if err != nil || rev.Status != Revoked || rev.RevokedBy != "secops" {
			t.Fatalf("admin revoke = %+v, %v", rev, err)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		past := clk.Now().Add(-time.Second)
		now := clk.Now()
		far := clk.Now().Add(defaultMaxTTL + time.Second)
		tests := []struct {
			name   string
			app    string
			change func(*Request)
			detail string
		}{
			{"no app", "", func(*Request) {}, "app is required"},
			{"no subject", "a", func(q *Request) { q.Subject = "" }, "subject is required"},
			{"blank subject", "a", func(q *Request) { q.Subject = "  " }, "subject is required"},
			{"huge subject", "a", func(q *Request) { q.Subject = strings.Repeat("x", 1025) }, "subject is longer"},
			{"no vendors", "a", func(q *Request) { q.Vendors = nil }, "vendors: at least one"},
			{"no purposes", "a", func(q *Request) { q.Purposes = []string{} }, "purposes: at least one"},
			{"no categories", "a", func(q *Request) { q.Categories = nil }, "categories: at least one"},
			{"unknown vendor", "a", func(q *Request) { q.Vendors = []string{"airbank", "evilcorp"} }, `vendors: "evilcorp"`},
			{"unknown purpose", "a", func(q *Request) { q.Purposes = []string{"marketing"} }, `purposes: "marketing"`},
			{"unknown category", "a", func(q *Request) { q.Categories = []string{"biometric"} }, `categories: "biometric"`},
			{"no evidence", "a", func(q *Request) { q.Evidence = Evidence{Reference: "x"} }, "evidence.text is required"},
			{"NUL in evidence", "a", func(q *Request) { q.Evidence = Evidence{Text: "agreed\x00"} }, "must not contain NUL"},
			{"no expiry", "a", func(q *Request) { q.TTL = "" }, "expires_at or ttl is required"},
			{"both expiries", "a", func(q *Request) { q.ExpiresAt = &far }, "not both"},
			{"bad ttl", "a", func(q *Request) { q.TTL = "30d" }, `ttl "30d" is not a duration`},
			{"negative ttl", "a", func(q *Request) { q.TTL = "-1h" }, "ttl must be positive"},
			{"ttl too long", "a", func(q *Request) { q.TTL = "17521h" }, "longer than the maximum"},
			{"expiry in the past", "a", func(q *Request) { q.TTL, q.ExpiresAt = "", &past }, "not in the future"},
			{"expiry now", "a", func(q *Request) { q.TTL, q.ExpiresAt = "", &now }, "not in the future"},
			{"expiry too far", "a", func(q *Request) { q.TTL, q.ExpiresAt = "", &far }, "longer than the maximum"},
		}
		r, _ := mustOpen(t, b, testOptions(clk))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := testRequest()
				tt.change(&req)
				_, err := r.Create(t.Context(), tt.app, req)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				mustContain(t, "error", err.Error(), tt.detail)
				if strings.Contains(err.Error(), testSubject) {
					t.Errorf("error quotes the subject: %v", err)
				}
			})
		}
		if n := raw(t, r).count(); n != 0 {
			t.Errorf("%d keys stored by refused requests", n)
		}
		if _, err := r.BySubject(t.Context(), "", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("BySubject(\"\") err = %v, want ErrInvalid", err)
		}
	})
}

// A reload of the vendor profiles changes which vendors new consents may name
// at once; consents already stored keep theirs, and an empty list is refused.
func TestSetVendors(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r, _ := mustOpen(t, b, testOptions(newClock()))
		req := testRequest()
		req.Vendors = []string{"banqware"}
		if _, err := r.Create(t.Context(), "a", req); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a vendor not configured: err = %v", err)
		}
		kept, err := r.Create(t.Context(), "a", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetVendors([]string{"banqware"}, &ErasurePlan{Unavailable: map[string]string{"banqware": "no erasure API"}}); err != nil {
			t.Fatal(err)
		}
		c, err := r.Create(t.Context(), "a", req)
		if err != nil {
			t.Fatalf("the vendor added: %v", err)
		}
		if es, err := r.Erasures(t.Context(), c.ID); err != nil || len(es) != 1 || es[0].Status != ErasureUnavailable {
			t.Errorf("erasures under the new plan: %v %v", es, err)
		}
		if _, err := r.Create(t.Context(), "a", testRequest()); !errors.Is(err, ErrInvalid) {
			t.Errorf("a vendor removed: err = %v", err)
		}
		if got, err := r.Get(t.Context(), kept.ID); err != nil || got.Vendors[0] != "airbank" {
			t.Errorf("a stored consent of a removed vendor: %v %v", got, err)
		}
		if err := r.SetVendors(nil, nil); err == nil {
			t.Error("an empty vendor list was taken")
		}
	})
}

func TestHookFailureStoresNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r, _ := mustOpen(t, b, o)
		ctx := t.Context()
		kept, err := r.Create(ctx, "onboarding-web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		before := raw(t, r).count()

		hooks.fail = errors.New("audit log disk full")
		if c, err := r.Create(ctx, "onboarding-web", testRequest()); !errors.Is(err, ErrHook) || c != nil {
			t.Fatalf("Create with failing hook = %+v, %v; want ErrHook", c, err)
		}
		if _, err := r.Revoke(ctx, "onboarding-web", "app", kept.ID); !errors.Is(err, ErrHook) {
			t.Fatalf("Revoke with failing hook err = %v; want ErrHook", err)
		}
		if err := r.Put(ctx, seedConsent(r)); !errors.Is(err, ErrHook) {
			t.Fatalf("Put with failing hook err = %v; want ErrHook", err)
		}
		if n := raw(t, r).count(); n != before {
			t.Errorf("stored keys went from %d to %d", before, n)
		}
		if got, _ := r.Get(ctx, kept.ID); got.Status != Active {
			t.Errorf("revocation the hook refused took effect: %+v", got)
		}
		if _, err := r.Get(ctx, "seed-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("seed the hook refused is stored: %v", err)
		}
	})
}

func seedConsent(r *Registry) Consent {
	granted := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Consent{
		ID:         "seed-1",
		App:        "onboarding-web",
		Subject:    r.SubjectHMAC("dev-user-1"),
		Vendors:    []string{"airbank"},
		Purposes:   []string{"kyc-onboarding"},
		Categories: []string{"identity"},
		Evidence:   Evidence{Text: "dev seed"},
		GrantedAt:  granted,
		ExpiresAt:  granted.AddDate(1, 0, 0),
	}
}

func TestPut(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := testOptions(clk)
		o.Hook = hooks.hook
		r, _ := mustOpen(t, b, o)
		ctx := t.Context()
		seed := seedConsent(r)

		if err := r.Put(ctx, seed); err != nil {
			t.Fatal(err)
		}
		got, err := r.Get(ctx, "seed-1")
		if err != nil || got.Status != Active || got.Subject != seed.Subject {
			t.Fatalf("Get(seed) = %+v, %v", got, err)
		}
		// The same seed again, even with times in another zone, is no change.
		same := seed
		same.GrantedAt = seed.GrantedAt.In(time.FixedZone("CET", 3600))
		if err := r.Put(ctx, same); err != nil {
			t.Errorf("same seed again: %v", err)
		}
		if seen := hooks.seen(); len(seen) != 1 || seen[0].Actor != "seed" || seen[0].Role != "system" || seen[0].Kind != ChangeCreated {
			t.Errorf("hook saw %+v, want one seed creation", seen)
		}

		longer := seed
		longer.ExpiresAt = seed.ExpiresAt.Add(time.Hour)
		if err := r.Put(ctx, longer); !errors.Is(err, ErrConflict) {
			t.Errorf("changed seed err = %v, want ErrConflict", err)
		}
		other := seed
		other.Purposes = []string{"age-verification"}
		if err := r.Put(ctx, other); !errors.Is(err, ErrConflict) {
			t.Errorf("changed seed err = %v, want ErrConflict", err)
		}

		// A seed revoked since must stay revoked when the seeding runs again.
		if _, err := r.Revoke(ctx, "secops", "admin", "seed-1"); err != nil {
			t.Fatal(err)
		}
		if err := r.Put(ctx, seed); err != nil {
			t.Errorf("seeding over a revoked seed: %v", err)
		}
		if got, _ := r.Get(ctx, "seed-1"); got.Status != Revoked {
			t.Errorf("re-seeding revived a revoked consent: %+v", got)
		}

		revokedAt := seed.GrantedAt.Add(time.Hour)
		invalid := []struct {
			name   string
			change func(*Consent)
			detail string
		}{
			{"raw subject", func(c *Consent) { c.Subject = testSubject }, "subject must be SubjectHMAC"},
			{"upper-case hmac", func(c *Consent) { c.Subject = strings.ToUpper(c.Subject) }, "subject must be SubjectHMAC"},
			{"no id", func(c *Consent) { c.ID = "" }, "id"},
			{"id with slash", func(c *Consent) { c.ID = "a/b" }, "id"},
			{"dot id", func(c *Consent) { c.ID = ".." }, "id"},
			{"no app", func(c *Consent) { c.App = "" }, "app is required"},
			{"unknown vendor", func(c *Consent) { c.Vendors = []string{"x"} }, "vendors"},
			{"no evidence", func(c *Consent) { c.Evidence.Text = "" }, "evidence.text"},
			{"no grant time", func(c *Consent) { c.GrantedAt = time.Time{} }, "granted_at is required"},
			{"expires before grant", func(c *Consent) { c.ExpiresAt = c.GrantedAt }, "after granted_at"},
			{"too long", func(c *Consent) { c.ExpiresAt = c.GrantedAt.AddDate(3, 0, 0) }, "longer than the maximum"},
			{"expired status", func(c *Consent) { c.Status = Expired }, "computed on read"},
			{"unknown status", func(c *Consent) { c.Status = "paused" }, "status must be"},
			{"revoked without time", func(c *Consent) { c.Status = Revoked }, "needs revoked_at"},
			{"active with revoked_at", func(c *Consent) { c.RevokedAt = &revokedAt }, "no revoked_at"},
		}
		for _, tt := range invalid {
			t.Run(tt.name, func(t *testing.T) {
				c := seedConsent(r)
				c.ID = "seed-2"
				tt.change(&c)
				err := r.Put(ctx, c)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				mustContain(t, "error", err.Error(), tt.detail)
				if strings.Contains(err.Error(), testSubject) {
					t.Errorf("error quotes the raw subject: %v", err)
				}
			})
		}

		// A seed may be revoked already, and may have expired already.
		old := seedConsent(r)
		old.ID = "seed-expired"
		old.GrantedAt, old.ExpiresAt = clk.Now().AddDate(-1, 0, 0), clk.Now().Add(-time.Hour)
		gone := seedConsent(r)
		gone.ID, gone.Status, gone.RevokedAt, gone.RevokedBy = "seed-revoked", Revoked, &revokedAt, "secops"
		for _, c := range []Consent{old, gone} {
			if err := r.Put(ctx, c); err != nil {
				t.Fatalf("Put(%s): %v", c.ID, err)
			}
			if err := r.Put(ctx, c); err != nil {
				t.Fatalf("Put(%s) again: %v", c.ID, err)
			}
		}
		if got, _ := r.Get(ctx, "seed-expired"); got.Status != Expired {
			t.Errorf("seed-expired reads %q", got.Status)
		}
		if got, _ := r.Get(ctx, "seed-revoked"); got.Status != Revoked || got.RevokedBy != "secops" {
			t.Errorf("seed-revoked reads %+v", got)
		}
		list, err := r.BySubject(ctx, "onboarding-web", "dev-user-1")
		if err != nil || len(list) != 3 {
			t.Errorf("BySubject(dev-user-1) = %d consents, %v; want 3", len(list), err)
		}
	})
}

func TestOpen(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, st := mustOpen(t, b, testOptions(clk))
		c, err := r.Create(t.Context(), "onboarding-web", testRequest())
		if err != nil {
			t.Fatal(err)
		}

		if b == bboltBackend {
			info, err := os.Stat(st.path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("file mode %o, want 600", perm)
			}
			t.Run("locked by another holder", func(t *testing.T) {
				start := time.Now()
				_, err := Open(st.path, testOptions(clk))
				if !errors.Is(err, ErrLocked) {
					t.Fatalf("second Open err = %v, want ErrLocked", err)
				}
				mustContain(t, "error", err.Error(), st.path)
				mustContain(t, "error", err.Error(), "another consentgate")
				if waited := time.Since(start); waited > 5*time.Second {
					t.Errorf("second Open took %s", waited)
				}
			})
		}

		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}

		t.Run("another key", func(t *testing.T) {
			o := testOptions(clk)
			o.SubjectKey = []byte("another key, 32 bytes or longer!")
			if _, err := st.tryOpen(t, o); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("Open with another key err = %v, want ErrWrongKey", err)
			}
		})

		t.Run("survives reopening", func(t *testing.T) {
			r2 := st.open(t, testOptions(clk))
			got, err := r2.Get(t.Context(), c.ID)
			if err != nil || got.Subject != c.Subject || got.Status != Active {
				t.Fatalf("after reopening: %+v, %v", got, err)
			}
			if list, err := r2.BySubject(t.Context(), "onboarding-web", testSubject); err != nil || len(list) != 1 {
				t.Fatalf("BySubject after reopening: %+v, %v", list, err)
			}
		})
	})
}

// A refused Open leaves nothing behind: no file, no tables.
func TestOpenRefusesOptions(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		detail string
	}{
		{"short key", func(o *Options) { o.SubjectKey = []byte("short") }, "at least 32"},
		{"no key", func(o *Options) { o.SubjectKey = nil }, "at least 32"},
		{"no vendors", func(o *Options) { o.Vendors = nil }, "no allowed vendors"},
		{"no purposes", func(o *Options) { o.Purposes = nil }, "no allowed purposes"},
		{"no categories", func(o *Options) { o.Categories = []string{} }, "no allowed categories"},
		{"empty vendor", func(o *Options) { o.Vendors = []string{"kb", ""} }, "empty value"},
		{"negative max ttl", func(o *Options) { o.MaxTTL = -time.Hour }, "negative"},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		st := newTestStore(t, b)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o := testOptions(newClock())
				tt.change(&o)
				_, err := st.tryOpen(t, o)
				if err == nil {
					t.Fatal("Open succeeded")
				}
				mustContain(t, "error", err.Error(), tt.detail)
			})
		}
		switch b {
		case bboltBackend:
			if _, err := os.Stat(st.path); !os.IsNotExist(err) {
				t.Errorf("refused Open left a file behind: %v", err)
			}
		case postgresBackend:
			tables, err := st.pg.Query(t.Context(), st.db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
			if err != nil || len(tables) != 0 {
				t.Errorf("refused Open left tables behind: %v, %v", tables, err)
			}
		}
	})
}

func TestMaxTTLOption(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		o := testOptions(newClock())
		o.MaxTTL = 24 * time.Hour
		r, _ := mustOpen(t, b, o)
		req := testRequest()
		req.TTL = "24h"
		if _, err := r.Create(t.Context(), "a", req); err != nil {
			t.Fatalf("TTL equal to MaxTTL: %v", err)
		}
		req.TTL = "24h1s"
		if _, err := r.Create(t.Context(), "a", req); !errors.Is(err, ErrInvalid) {
			t.Fatalf("TTL over MaxTTL err = %v", err)
		}
	})
}

// BenchmarkGet is the gateway's per-call lookup: one read (a bbolt transaction, or
// one query to a PostgreSQL server on loopback, over TLS), one decode.
func BenchmarkGet(b *testing.B) {
	for _, kind := range []backend{bboltBackend, postgresBackend} {
		b.Run(string(kind), func(b *testing.B) {
			r, _ := mustOpen(b, kind, testOptions(newClock()))
			c, err := r.Create(b.Context(), "onboarding-web", testRequest())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Get(b.Context(), c.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
