package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestProcessingReport(t *testing.T) {
	yes, no := true, false
	lines := []string{
		`{"format":"consentgate-audit","log_id":"x"}`,
		rec(Record{Kind: KindIntent, Purpose: "kyc-onboarding", Vendor: "airbank", App: "web", Allow: &yes}),
		rec(Record{Kind: KindOutcome, Purpose: "kyc-onboarding", Vendor: "airbank", App: "web", Allow: &yes, Status: 200, Detail: map[string]string{"categories": "identity,national_id"}}),
		rec(Record{Kind: KindOutcome, Purpose: "kyc-onboarding", Vendor: "airbank", App: "web", Allow: &yes, Status: 200, Detail: map[string]string{"categories": "address"}}),
		rec(Record{Kind: KindOutcome, Purpose: "kyc-onboarding", Vendor: "airbank", App: "web", Allow: &no, Status: 403}),
		rec(Record{Kind: KindOutcome, Purpose: "kyc-onboarding", Vendor: "airbank", App: "web", Allow: &yes, Status: 502}),
		rec(Record{Kind: KindOutcome, Purpose: "age-verification", Vendor: "kb", App: "shop", Allow: &yes, Status: 200, Detail: map[string]string{"categories": "derived_age"}}),
		rec(Record{Kind: KindOutcome, Purpose: "age-verification", Vendor: "kb", App: "shop", Allow: &yes, Status: 200, Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}),
	}
	rep, err := Processing(strings.NewReader(strings.Join(lines, "\n")), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	kyc := rep.Rows[1]
	if kyc.Purpose != "kyc-onboarding" || kyc.Disclosures != 2 || kyc.Denials != 1 || kyc.Other != 1 ||
		strings.Join(kyc.Categories, ",") != "address,identity,national_id" {
		t.Errorf("kyc row %+v", kyc)
	}
	if age := rep.Rows[0]; age.Disclosures != 1 || strings.Join(age.Categories, ",") != "derived_age" {
		t.Errorf("age row (one record is before the period) %+v", age)
	}
	md := rep.Markdown()
	if !strings.Contains(md, "| kyc-onboarding | airbank | web | address, identity, national_id | 2 | 1 | 1 |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func rec(r Record) string {
	if r.Time.IsZero() {
		r.Time = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	}
	b, _ := json.Marshal(r)
	return string(b)
}
