package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/secrets"
	"github.com/consentgate/consentgate/tokens"
)

// revealFixture is a registry with two end users' consents for one app and a
// third for another app, a vault, and a token of the first user's birth number.
type revealFixture struct {
	reg            *consent.Registry
	vault          *tokens.Vault
	mine, theirs   *consent.Consent
	otherApp       *consent.Consent
	token, another string // mine; the other end user's
}

const revealedBirthNumber = "9157144238"

func newRevealFixture(t *testing.T) *revealFixture {
	t.Helper()
	reg, err := consent.Open(filepath.Join(t.TempDir(), "state.db"), consent.Options{SubjectKey: []byte(strings.Repeat("k", 32)),
		Vendors: []string{"kb", "airbank"}, Purposes: []string{"identity-confirmation"}, Categories: []string{"national_id", "document"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	key, _ := secrets.ParseSealKey(strings.Repeat("ab", 32))
	f := &revealFixture{reg: reg, vault: tokens.New(reg, key, nil, []byte("index key of the test vault"))}
	create := func(app, subject string) *consent.Consent {
		c, err := reg.Create(t.Context(), app, consent.Request{Subject: subject, Vendors: []string{"kb", "airbank"},
			Purposes: []string{"identity-confirmation"}, Categories: []string{"national_id", "document"},
			Evidence: consent.Evidence{Text: "I agree.", Reference: "t"}, TTL: "24h"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.mine, f.theirs, f.otherApp = create("web", "jana"), create("web", "petr"), create("mobile", "jana")
	tokenOf := func(c *consent.Consent) string {
		tok, err := f.vault.Tokenize(t.Context(), tokens.Binding{ConsentID: c.ID, Subject: c.Subject, App: c.App,
			Category: "national_id", Vendor: "airbank", Field: "birthNumber"}, tokens.Format{Kind: tokens.KindPreserve}, false, revealedBirthNumber)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.token, f.another = tokenOf(f.mine), tokenOf(f.theirs)
	for f.another[0] == '0' { // sent as a JSON number too, which cannot start with 0
		f.another = tokenOf(f.theirs)
	}
	return f
}

// call is a KB verify call under c with body sent and the decision revealing reveal.
func (f *revealFixture) call(c *consent.Consent, body string, reveal ...string) (*call, *Gateway) {
	op := &configs.Operation{ID: "kb.verifyIdentity", Reveals: []string{"birthNumber", "identityDocument.number", "query:bn"},
		Fields: configs.Fields{Request: map[string]string{"birthNumber": "national_id", "identityDocument.number": "document"},
			Query: map[string]string{"bn": "national_id"}}}
	cl := &call{ctx: context.Background(), ex: &exchange{}, rt: &route{op: compileOperation(op)},
		caller: &consentOf{id: c.ID, subject: c.Subject, app: c.App},
		sent:   &sentRequest{body: []byte(body), contentType: "application/json", query: url.Values{}, header: http.Header{}}}
	cl.decision.Request.Reveal = reveal
	return cl, &Gateway{tokens: f.vault, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestRevealOnEgress(t *testing.T) {
	f := newRevealFixture(t)
	both := []string{"birthNumber", "identityDocument.number", "query:bn"}
	tests := []struct {
		name     string
		c        *consent.Consent
		body     string
		reveal   []string
		wantBody string // "" with a refusal
	}{
		{"own token, revealed", f.mine, `{"birthNumber":"` + f.token + `","surname":"Nováková"}`, both,
			`{"birthNumber":"` + revealedBirthNumber + `","surname":"Nováková"}`},
		{"a value that is no token goes as it is", f.mine, `{"birthNumber":"8001011234"}`, both, `{"birthNumber":"8001011234"}`},
		{"another end user's token", f.mine, `{"birthNumber":"` + f.another + `"}`, both, ""},
		{"another app's consent holding my token", f.otherApp, `{"birthNumber":"` + f.token + `"}`, both, ""},
		{"the purpose does not reveal it", f.mine, `{"birthNumber":"` + f.token + `"}`, []string{"identityDocument.number"}, ""},
		{"a token of another category", f.mine, `{"identityDocument":{"number":"` + f.token + `"}}`, both, ""},
		{"an opaque-shaped value that is no token", f.mine, `{"birthNumber":"tok_` + strings.Repeat("Z", 24) + `"}`, both, ""},
		{"another end user's token as a number", f.mine, `{"birthNumber":` + f.another + `}`, both, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, g := f.call(tt.c, tt.body, tt.reveal...)
			r := g.reveal(c)
			switch {
			case tt.wantBody == "" && (r == nil || r.Status != http.StatusForbidden || r.Kind != refusal.TokenNotRevealable):
				t.Fatalf("refusal %+v, want 403 token-not-revealable", r)
			case tt.wantBody == "" && strings.Contains(r.Detail, revealedBirthNumber):
				t.Fatalf("the refusal names the value: %s", r.Detail)
			case tt.wantBody != "" && r != nil:
				t.Fatalf("refused: %+v", r)
			case tt.wantBody != "" && string(c.sent.body) != tt.wantBody:
				t.Fatalf("sent %s, want %s", c.sent.body, tt.wantBody)
			}
			if tt.wantBody != "" && strings.Contains(tt.body, f.token) && c.ex.revealed[0] != "birthNumber="+f.vault.ID(f.token) {
				t.Errorf("revealed %v", c.ex.revealed)
			}
		})
	}

	// In a query parameter too; and once the consent is revoked, never again.
	c, g := f.call(f.mine, "", both...)
	c.sent.query.Set("bn", f.token)
	if r := g.reveal(c); r != nil || c.sent.query.Get("bn") != revealedBirthNumber {
		t.Fatalf("query: %+v, sent %q", r, c.sent.query.Get("bn"))
	}
	if _, err := f.reg.Revoke(t.Context(), "web", "app", f.mine.ID); err != nil {
		t.Fatal(err)
	}
	c, g = f.call(f.mine, `{"birthNumber":"`+f.token+`"}`, both...)
	if r := g.reveal(c); r == nil || r.Kind != refusal.TokenNotRevealable || strings.Contains(string(c.sent.body), revealedBirthNumber) {
		t.Fatalf("after revocation: %+v, body %s", r, c.sent.body)
	}
}

// A vendor that echoes what it was sent (an error message naming the birth
// number) hands the app nothing the app sent as a token; a value the app got
// as a token does not reach it in another field or a header either.
func TestRevealedAndTokenizedValuesAreNotEchoed(t *testing.T) {
	f := newRevealFixture(t)
	c, g := f.call(f.mine, `{"birthNumber":"`+f.token+`"}`, "birthNumber")
	c.inj = &injection{}
	if r := g.reveal(c); r != nil {
		t.Fatal(r)
	}
	echo := outboundScrubber(c).bytes([]byte(`{"message":"birthNumber ` + revealedBirthNumber + ` does not match"}`))
	if strings.Contains(string(echo), revealedBirthNumber) {
		t.Errorf("the vendor's echo reached the app: %s", echo)
	}
	h := http.Header{"Content-Location": {"/persons/" + revealedBirthNumber}}
	body := redactTokenized([]byte(`{"birthNumber":"4830196205","note":"for `+revealedBirthNumber+`"}`), h, []string{revealedBirthNumber})
	if strings.Contains(string(body), revealedBirthNumber) || strings.Contains(h.Get("Content-Location"), revealedBirthNumber) {
		t.Errorf("a tokenized value reached the app: %s, %v", body, h)
	}
}

// A token in a path placeholder the operation takes tokens in is revealed in
// place, escaped or not as the app sent it; the usual refusals hold; a value
// that would not stay one segment (a slash in it) is never put in the path.
func TestRevealInThePath(t *testing.T) {
	f := newRevealFixture(t)
	slashed, err := f.vault.Tokenize(t.Context(), tokens.Binding{ConsentID: f.mine.ID, Subject: f.mine.Subject, App: f.mine.App,
		Category: "national_id", Vendor: "airbank", Field: "birthNumber"}, tokens.Format{Kind: tokens.KindOpaque}, false, "915714/4238")
	if err != nil {
		t.Fatal(err)
	}
	escaped := func(s string) string {
		var b strings.Builder
		for i := range len(s) {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	}
	op := compileOperation(&configs.Operation{ID: "kb.person", Path: "/v1/persons/{bn}/verification", Reveals: []string{"path:bn"},
		Fields: configs.Fields{Path: map[string]string{"bn": "national_id"}}})
	tests := []struct {
		name, segment string
		reveal        []string
		want          string // the sent path; "" for a refusal
	}{
		{"own token", f.token, []string{"path:bn"}, "/v1/persons/" + revealedBirthNumber + "/verification"},
		{"own token, percent-encoded", escaped(f.token), []string{"path:bn"}, "/v1/persons/" + revealedBirthNumber + "/verification"},
		{"another end user's token", f.another, []string{"path:bn"}, ""},
		{"the purpose does not reveal it", f.token, nil, ""},
		{"a value with a slash", slashed, []string{"path:bn"}, ""},
		{"no token", "8001011234", []string{"path:bn"}, "/v1/persons/8001011234/verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, g := f.call(f.mine, "", tt.reveal...)
			c.rt = &route{op: op}
			c.sent.path = "/v1/persons/" + tt.segment + "/verification"
			r := g.reveal(c)
			switch {
			case tt.want == "" && (r == nil || r.Kind != refusal.TokenNotRevealable):
				t.Fatalf("refusal %+v, sent %s", r, c.sent.path)
			case tt.want == "" && (strings.Contains(c.sent.path, revealedBirthNumber) || strings.Contains(c.sent.path, "4238")):
				t.Fatalf("refused, but the path holds the value: %s", c.sent.path)
			case tt.want != "" && (r != nil || c.sent.path != tt.want):
				t.Fatalf("refusal %+v, sent %s, want %s", r, c.sent.path, tt.want)
			}
		})
	}
}
