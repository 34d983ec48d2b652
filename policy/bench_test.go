package policy

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecideShippedPolicy measures one decision of the shipped policy for a
// realistic call: Air Bank personal data under kyc-onboarding with an active
// consent. No compilation and no file read happen per decision. "evaluated"
// runs OPA every time (the memo off: a call unlike any in the same second);
// "memoised" repeats one input, as calls under one consent in one second do;
// "end-users" takes 20,000 end users' consents in turn, each granted at its
// own time and expiring at its own, as the gateway's calls do.
func BenchmarkDecideShippedPolicy(b *testing.B) {
	b.Run("evaluated", func(b *testing.B) { benchmarkDecide(b, -1, 1) })
	b.Run("memoised", func(b *testing.B) { benchmarkDecide(b, 0, 1) })
	b.Run("end-users", func(b *testing.B) { benchmarkDecide(b, 0, 20000) })
}

func benchmarkDecide(b *testing.B, memoEntries, endUsers int) {
	e, err := New(context.Background(), Options{Source: Source{Dir: "../configs/policies"}, MemoEntries: memoEntries})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	in := &Input{
		App:    App{ID: "onboarding-web", Role: "app", URI: "spiffe://consentgate.dev/app/onboarding-web"},
		Vendor: "airbank", Operation: "airbank.personalData", Method: "GET",
		Path: "/openapi/glClientIdentity/v1/personalData", Body: "json",
		Purpose: "kyc-onboarding", ConsentID: "dev-kyc",
		Consent: &Consent{ID: "dev-kyc", App: "onboarding-web", Subject: "5f0c", Vendors: []string{"airbank", "kb"},
			Purposes: []string{"kyc-onboarding"}, Categories: []string{"identity", "address", "document", "national_id"},
			Status: "active", GrantedAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour)},
		ResponseFields: map[string]string{
			"gender": "identity", "names": "identity", "surname": "identity", "birthNumber": "national_id",
			"birthDate": "identity", "birthPlace": "identity", "citizenship": "identity",
			"permanentAddress.country": "address", "permanentAddress.municipality": "address", "permanentAddress.street": "address",
			"permanentAddress.locality": "address", "permanentAddress.buildingNumber": "address", "permanentAddress.postalCode": "address",
			"primaryPersonalDocument.type": "document", "primaryPersonalDocument.number": "document",
			"primaryPersonalDocument.validTo": "document", "primaryPersonalDocument.country": "document",
			"politicallyExposedPerson": "pep", "physicallyIdentified": "identity",
		},
		Now: now,
	}
	if d := e.Decide(context.Background(), in); !d.Allow || d.Response.Fields["birthNumber"] != "mask" {
		b.Fatalf("unexpected decision %+v", d)
	}
	ins := make([]*Input, endUsers)
	for i := range ins {
		c := *in.Consent
		c.ID, c.Subject = fmt.Sprintf("cst_%026d", i), fmt.Sprintf("%064x", i)
		c.GrantedAt, c.ExpiresAt = now.Add(-time.Duration(i)*time.Minute), now.Add(time.Duration(i+1)*time.Hour)
		u := *in
		u.ConsentID, u.Consent, u.Now = c.ID, &c, now.Add(time.Duration(i%60)*time.Second)
		ins[i] = &u
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		e.Decide(context.Background(), ins[i%endUsers])
		i++
	}
}
