package refusal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteAnswersProblemJSON(t *testing.T) {
	r := New(http.StatusServiceUnavailable, PolicyBusy, "Policy engine busy", "retry")
	r.Header = http.Header{"Retry-After": {"1"}}
	r.DecisionID, r.Reasons = "d-1", []string{"no-consent"}
	r.Note = "internal detail that must stay in the audit record"
	rec := httptest.NewRecorder()
	r.Write(rec, "req-1")
	if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("Retry-After") != "1" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "urn:consentgate:problem:policy-busy", "title": "Policy engine busy", "status": 503.0,
		"detail": "retry", "request_id": "req-1", "decision_id": "d-1", "reasons": []any{"no-consent"}}
	if len(got) != len(want) {
		t.Errorf("body %v, want %v (the note must not be in it)", got, want)
	}
	for k, v := range want {
		if b, _ := json.Marshal(got[k]); string(b) != mustJSON(v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestWriteFallsBackToTheStatusText(t *testing.T) {
	rec := httptest.NewRecorder()
	(&Refusal{Status: http.StatusNotFound, Kind: NotFound}).Write(rec, "")
	var got struct{ Title string }
	json.Unmarshal(rec.Body.Bytes(), &got)
	if got.Title != "Not Found" {
		t.Errorf("title %q, want the status text", got.Title)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
