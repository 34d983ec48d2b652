package consent

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/consentgate/consentgate/policy"
)

// BenchmarkDecisionAmong is the gateway's decision for a call, made among 1,
// 20,000 and 1,000,000 stored consents: one lookup of the end user's consent,
// then the shipped policy, each call under another end user's consent. Its
// cost must not grow with the number of end users (p50-µs is the median of
// the calls; compare it across sizes).
func BenchmarkDecisionAmong(b *testing.B) {
	engine, err := policy.New(context.Background(), policy.Options{Source: policy.Source{Dir: "../configs/policies"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []backend{bboltBackend, postgresBackend} {
		for _, n := range []int{1, 20_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				r, _ := mustOpen(b, kind, testOptions(newClock()))
				ids := seedMany(b, r, n)
				benchmarkDecision(b, r, engine, ids)
			})
		}
	}
}

func benchmarkDecision(b *testing.B, r *Registry, engine *policy.Engine, ids []string) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	in := policy.Input{App: policy.App{ID: "onboarding-web", Role: "app"}, Vendor: "airbank", Operation: "airbank.personalData",
		Method: "GET", Path: "/p", Body: "json", Class: "subject", Purpose: "kyc-onboarding", Now: now,
		ResponseFields: map[string]string{"names": "identity", "birthNumber": "national_id", "permanentAddress.street": "address"}}
	rng := rand.New(rand.NewPCG(1, 2))
	took := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		id := ids[rng.IntN(len(ids))]
		c, err := r.Get(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		in.ConsentID = id
		in.Consent = &policy.Consent{ID: c.ID, App: c.App, Subject: c.Subject, Vendors: c.Vendors, Purposes: c.Purposes,
			Categories: c.Categories, Status: c.Status, GrantedAt: c.GrantedAt, ExpiresAt: c.ExpiresAt}
		if d := engine.Decide(ctx, &in); !d.Allow {
			b.Fatalf("consent %s denied: %v", id, d.Reasons)
		}
		if len(took) < cap(took) {
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds())/1e3, "p50-µs")
}

// seedMany stores n active consents of as many end users, in large
// transactions (one per consent would take hours for a million), and returns
// their ids.
func seedMany(b *testing.B, r *Registry, n int) []string {
	b.Helper()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	template := Consent{App: "onboarding-web", Vendors: []string{"airbank"}, Purposes: []string{"kyc-onboarding"},
		Categories: []string{"identity", "address"}, Status: Active, GrantedAt: at, ExpiresAt: at.AddDate(1, 0, 0)}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cst-bench-%d", i)
	}
	ctx := context.Background()
	if pg, ok := r.st.(*pgStore); ok {
		// Built by the server: a million round trips would take minutes.
		doc, err := json.Marshal(template)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pg.pool.Exec(ctx, `INSERT INTO consentgate_consents (id, app, subject, doc)
			SELECT 'cst-bench-' || g, $1, md5(g::text),
				jsonb_set(jsonb_set($2::jsonb, '{id}', to_jsonb('cst-bench-' || g)), '{subject}', to_jsonb(md5(g::text)))
			FROM generate_series(0, $3 - 1) g`, template.App, doc, n); err != nil {
			b.Fatal(err)
		}
		// As a server long in service has them: hint bits set, statistics
		// known, the table read once.
		for _, q := range []string{`VACUUM ANALYZE consentgate_consents`, `SELECT sum(length(doc::text)) FROM consentgate_consents`} {
			if _, err := pg.pool.Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	for start := 0; start < n; start += 50_000 {
		err := r.st.update(ctx, func(tx storeTx) error {
			for i := start; i < min(start+50_000, n); i++ {
				c := template
				c.ID, c.Subject = ids[i], fmt.Sprintf("%064x", i)
				if _, err := tx.insertConsent(&c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// As a gateway long in service has it: the file's pages read once.
	err := r.st.view(ctx, func(tx storeTx) error {
		return tx.(boltTx).tx.Bucket(bucketConsents).ForEach(func(k, v []byte) error { return nil })
	})
	if err != nil {
		b.Fatal(err)
	}
	return ids
}
