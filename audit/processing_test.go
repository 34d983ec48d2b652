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
	rep, err := Processing(strings.NewReader(strings.Join(lines, "\n")), ProcessingOptions{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
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
	if !strings.Contains(md, "| kyc-onboarding | airbank | web | address, identity, national_id | 2 | 0 | 1 | 1 |") {
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

// A call that carried only ids and statuses is no disclosure; the period is
// given in dates; each recipient says how data is erased there.
func TestProcessingReportRecipientsAndPeriod(t *testing.T) {
	yes := true
	day := func(d int) time.Time { return time.Date(2026, 11, d, 10, 0, 0, 0, time.UTC) }
	lines := []string{
		rec(Record{Kind: KindOutcome, Purpose: "account-aggregation", Vendor: "banqware", App: "web", Allow: &yes, Status: 201, Time: day(3)}),
		rec(Record{Kind: KindOutcome, Purpose: "account-aggregation", Vendor: "banqware", App: "web", Allow: &yes, Status: 200, Time: day(5), Detail: map[string]string{"categories": "account"}}),
		rec(Record{Kind: KindOutcome, Purpose: "kyc-onboarding", Vendor: "finid", App: "web", Allow: &yes, Status: 200, Time: day(9), Detail: map[string]string{"categories": "national_id"}}),
	}
	rep, err := Processing(strings.NewReader(strings.Join(lines, "\n")), ProcessingOptions{Erasure: map[string]string{
		"banqware": "by banqware.deleteConsent", "finid": ErasureUnavailable("no erasure call")}})
	if err != nil {
		t.Fatal(err)
	}
	if row := rep.Rows[0]; row.Disclosures != 1 || row.NoPersonalData != 1 {
		t.Errorf("banqware row %+v: the user creation disclosed nothing", row)
	}
	md := rep.Markdown()
	for _, want := range []string{"Period: 2026-11-03 to 2026-11-09",
		"| banqware | account-aggregation | 1 | by banqware.deleteConsent |",
		"| finid | kyc-onboarding | 1 | unavailable: no erasure call |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// For one person: only their records, and where each withdrawn consent's
// erasure stands.
func TestProcessingReportForOnePerson(t *testing.T) {
	yes := true
	me, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	lines := []string{
		rec(Record{Kind: KindConsent, ConsentID: "c1", App: "web", SubjectHMAC: me, Detail: map[string]string{"change": "created", "vendors": "banqware,finid"}}),
		rec(Record{Kind: KindConsent, ConsentID: "c2", App: "web", SubjectHMAC: other, Detail: map[string]string{"change": "created", "vendors": "banqware"}}),
		rec(Record{Kind: KindOutcome, ConsentID: "c1", SubjectHMAC: me, Purpose: "account-aggregation", Vendor: "banqware", App: "web", Allow: &yes, Status: 200, Detail: map[string]string{"categories": "account"}}),
		rec(Record{Kind: KindOutcome, ConsentID: "c2", SubjectHMAC: other, Purpose: "account-aggregation", Vendor: "banqware", App: "web", Allow: &yes, Status: 200, Detail: map[string]string{"categories": "account"}}),
		rec(Record{Kind: KindConsent, ConsentID: "c1", App: "web", SubjectHMAC: me, Detail: map[string]string{"change": "revoked", "vendors": "banqware,finid"}}),
		rec(Record{Kind: KindOutcome, ConsentID: "c1", SubjectHMAC: me, Vendor: "banqware", App: "web", Allow: &yes, Status: 503, Error: "vendor-unreachable", Detail: map[string]string{"initiator": "erasure"}}),
		rec(Record{Kind: KindOutcome, ConsentID: "c1", SubjectHMAC: me, Vendor: "banqware", App: "web", Allow: &yes, Status: 204, Detail: map[string]string{"initiator": "erasure"}}),
	}
	rep, err := Processing(strings.NewReader(strings.Join(lines, "\n")), ProcessingOptions{Subject: me,
		Erasure: map[string]string{"banqware": "by banqware.deleteConsent", "finid": ErasureUnavailable("no erasure call")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Consents) != 1 || rep.Consents[0].ID != "c1" || rep.Consents[0].Status != "revoked" {
		t.Fatalf("consents %+v", rep.Consents)
	}
	es := rep.Consents[0].Erasures
	if len(es) != 2 || es[0] != (SubjectErasure{Vendor: "banqware", Status: "done", Attempts: 2}) ||
		es[1].Vendor != "finid" || es[1].Status != "unavailable" {
		t.Errorf("erasures %+v", es)
	}
	if row := rep.Rows[1]; row.Purpose != "account-aggregation" || row.Disclosures != 1 {
		t.Errorf("rows %+v: the other person's call was counted", rep.Rows)
	}
}
