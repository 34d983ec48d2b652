package proxy

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/consentgate/consentgate/audit"
)

// withinReserve is the real audit log with the disk's answer in the test's
// hands (the audit package tests the real file system's answer).
type withinReserve struct {
	*audit.Log
	within atomic.Bool
}

func (w *withinReserve) InReserve() bool { return w.within.Load() }

// A flood of refusals must not fill the audit disk and so stop disclosures:
// within the reserve, refusals made before any vendor was called are answered
// as always and counted, not recorded; calls that reach a vendor are recorded
// in full; the next refusal recorded says how many went before it.
func TestRefusalsLeaveTheAuditReserveToDisclosures(t *testing.T) {
	var keeper *withinReserve
	env := newTestEnv(t, func(o *Options) {
		keeper = &withinReserve{Log: o.Audit.(*audit.Log)}
		o.Audit = keeper
	})
	keeper.within.Store(true)
	refuse := func() {
		t.Helper()
		resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", map[string]string{"X-Consent-Id": "deny-me"})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a denied call within the reserve: %d %s", resp.StatusCode, body)
		}
	}
	for range 3 {
		refuse()
	}
	if resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/42", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("an allowed call within the reserve: %d %s", resp.StatusCode, body)
	}
	var m dto.Metric
	if err := env.gw.metrics.refusalsShed.Write(&m); err != nil || m.GetCounter().GetValue() != 3 {
		n := m.GetCounter().GetValue()
		t.Errorf("consentgate_audit_refusals_unrecorded_total = %v, want 3", n)
	}
	var denied, intents, outcomes int
	for _, r := range env.exportAll(t) {
		switch {
		case r.Kind == audit.KindOutcome && r.Status == http.StatusForbidden:
			denied++
		case r.Kind == audit.KindIntent && r.Operation == "echo.thing":
			intents++
		case r.Kind == audit.KindOutcome && r.Operation == "echo.thing" && r.Status == http.StatusOK:
			outcomes++
		}
	}
	if denied != 0 || intents != 1 || outcomes != 1 {
		t.Fatalf("within the reserve: %d refusals, %d intents, %d outcomes recorded; want 0, 1, 1", denied, intents, outcomes)
	}

	keeper.within.Store(false)
	refuse()
	var last *audit.Record
	recs := env.exportAll(t)
	for i := range recs {
		if recs[i].Kind == audit.KindOutcome && recs[i].Status == http.StatusForbidden {
			last = &recs[i]
		}
	}
	if last == nil || last.Detail["unrecorded_before"] != strconv.Itoa(3) {
		t.Fatalf("the first refusal recorded after the reserve: %+v", last)
	}
	refuse()
	if recs := env.exportAll(t); recs[len(recs)-1].Detail["unrecorded_before"] != "" {
		t.Errorf("the count was carried twice: %+v", recs[len(recs)-1])
	}
}
