package policy

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The recorded input holds no subject and no field maps, and replays to the
// same decision.
func TestReplayable(t *testing.T) {
	e, _ := newTestEngine(t, testPolicy, nil)
	in := &Input{App: App{ID: "web", Role: "app"}, Operation: "v.ok", ConsentID: "c1",
		Consent:        &Consent{ID: "c1", App: "web", Subject: "5f0c0ffee5f0c0ffee", Status: "active"},
		ResponseFields: map[string]string{"name": "identity"}, Now: time.Now()}
	rec := in.Replayable()
	if strings.Contains(rec, "5f0c0ffee") || strings.Contains(rec, `"fields":{"request"`) || strings.Contains(rec, "identity") {
		t.Fatalf("recorded input keeps the subject or the field maps: %s", rec)
	}
	v, err := ReplayInput(rec, nil, in.ResponseFields, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := e.Decide(context.Background(), in)
	got := e.DecideRaw(context.Background(), v)
	if got.Allow != want.Allow || strings.Join(got.Reasons, ",") != strings.Join(want.Reasons, ",") {
		t.Errorf("replayed %v %v, decided %v %v", got.Allow, got.Reasons, want.Allow, want.Reasons)
	}
}
