package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/sandbox"
)

// Vendor timeouts of the fault test: short, so a hung vendor costs seconds, and a
// short idle-connection life, so that waiting faultIdle makes the gateway's next
// call open a new connection (whose handshake a certificate fault applies to).
var faultTimeouts = configs.Timeouts{
	ResponseHeader: configs.Duration{Duration: 2 * time.Second},
	Request:        configs.Duration{Duration: 4 * time.Second},
	IdleConn:       configs.Duration{Duration: 50 * time.Millisecond},
}

const faultIdle = 150 * time.Millisecond

// Air Bank misbehaves in every way a vendor can; each time the app gets the answer
// the gateway defines (problem+json with a fixed type, or the vendor's own error
// minimised), the outcome record says what happened, and no byte of the vendor's
// unminimised data (here: its raw birth number) reaches the app, the log or the
// audit log. After each fault the next call succeeds.
func TestReliabilityVendorFaults(t *testing.T) {
	e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), vendorTimeouts: faultTimeouts})
	t.Cleanup(stop)
	const path = "/v/airbank/openapi/glClientIdentity/v1/personalData"
	airbank := e.sandboxes.Airbank

	raw := e.directAirbankBody(t)
	var person map[string]any
	if err := json.Unmarshal(raw, &person); err != nil {
		t.Fatal(err)
	}
	birthNumber := person["birthNumber"].(string)
	afterBirthNumber := bytes.Index(raw, []byte(birthNumber)) + len(birthNumber) + 1
	if afterBirthNumber <= len(birthNumber) {
		t.Fatal("the Air Bank answer carries no birth number")
	}

	tests := []struct {
		name  string
		fault sandbox.Fault
		// status and problem type the app gets; no problem: the vendor's answer,
		// minimised, whose body check looks at.
		status  int
		problem string
		check   func(t *testing.T, body []byte)
		// auditError matches the outcome record's error; "" means it has none.
		auditError string
		// notCalled: the TLS handshake fails, no request reaches the vendor.
		notCalled bool
		// withheld is a field path the outcome record lists as withheld.
		withheld string
	}{
		{name: "vendor hangs", fault: sandbox.Fault{Kind: sandbox.FaultHang},
			status: http.StatusGatewayTimeout, problem: "vendor-timeout", auditError: "timeout awaiting response headers"},
		{name: "connection reset before the answer", fault: sandbox.Fault{Kind: sandbox.FaultDrop},
			status: http.StatusBadGateway, problem: "vendor-unreachable", auditError: "connection reset|EOF"},
		{name: "connection reset mid-body, after the birth number", fault: sandbox.Fault{Kind: sandbox.FaultReset, Cut: afterBirthNumber},
			status: http.StatusBadGateway, problem: "vendor-unreachable", auditError: "reading vendor response"},
		{name: "5xx with a JSON error carrying personal data", fault: sandbox.Fault{Kind: sandbox.FaultAnswer, Status: http.StatusServiceUnavailable,
			Body: []byte(`{"errors":[{"code":"SERVICE_UNAVAILABLE","message":"maintenance","severity":"ERROR"}],"debug":{"birthNumber":"` + birthNumber + `"}}`)},
			status: http.StatusServiceUnavailable, check: func(t *testing.T, body []byte) {
				if string(body) != `{"errors":[{"code":"SERVICE_UNAVAILABLE","message":"maintenance","severity":"ERROR"}]}` {
					t.Errorf("the vendor's error, minimised: %s", body)
				}
			}, withheld: "debug"},
		{name: "5xx with an HTML page", fault: sandbox.Fault{Kind: sandbox.FaultAnswer, Status: http.StatusInternalServerError, ContentType: "text/html",
			Body: []byte("<html><body>NullPointerException for " + birthNumber + "</body></html>")},
			status: http.StatusBadGateway, problem: "vendor-response-refused", auditError: "not JSON"},
		{name: "slow body beyond the request timeout", fault: sandbox.Fault{Kind: sandbox.FaultTrickle, Chunk: 1, Interval: 200 * time.Millisecond},
			status: http.StatusGatewayTimeout, problem: "vendor-timeout", auditError: "deadline exceeded"},
		{name: "slow body within the request timeout", fault: sandbox.Fault{Kind: sandbox.FaultTrickle, Chunk: 128, Interval: 20 * time.Millisecond},
			status: http.StatusOK, check: func(t *testing.T, body []byte) {
				var got map[string]any
				if err := json.Unmarshal(body, &got); err != nil || got["surname"] != person["surname"] || got["birthNumber"] == nil {
					t.Errorf("the minimised answer: %s (%v)", body, err)
				}
			}, withheld: "birthNumber"},
		{name: "truncated JSON", fault: sandbox.Fault{Kind: sandbox.FaultAnswer, Body: raw[:afterBirthNumber]},
			status: http.StatusBadGateway, problem: "vendor-response-refused", auditError: "not JSON"},
		{name: "certificate from another CA", fault: sandbox.Fault{Certificate: wrongCACert(t)},
			status: http.StatusBadGateway, problem: "vendor-unreachable", auditError: "certificate signed by unknown authority", notCalled: true},
		{name: "certificate for another host", fault: sandbox.Fault{Certificate: e.wrongHostCert(t)},
			status: http.StatusBadGateway, problem: "vendor-unreachable", auditError: "certificate is valid for vendor.invalid", notCalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := airbank.Count()
			airbank.SetFault(tt.fault)
			time.Sleep(faultIdle)
			resp, body := call(t, e.app, "GET", e.gatewayURL()+path, "", under("dev-kyc", "kyc-onboarding"))
			airbank.SetFault(sandbox.Fault{})

			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			reqID := resp.Header.Get("X-Request-Id")
			if tt.problem != "" {
				var p struct {
					Type      string `json:"type"`
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(body, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("not problem+json (%v): %s %s", err, resp.Header.Get("Content-Type"), body)
				}
				if p.Type != "urn:consentgate:problem:"+tt.problem || p.RequestID != reqID {
					t.Errorf("problem %s, want type %s and request id %s", body, tt.problem, reqID)
				}
			}
			if tt.check != nil {
				tt.check(t, body)
			}
			if resp.Header.Get("X-Consentgate-Decision-Id") == "" {
				t.Error("no decision id")
			}
			if bytes.Contains(body, []byte(birthNumber)) {
				t.Errorf("the raw birth number reached the app: %s", body)
			}
			e.assertNoSecrets(t, "answer", string(body))
			if got, want := airbank.Count()-before, map[bool]int{false: 1, true: 0}[tt.notCalled]; got != want {
				t.Errorf("the vendor got %d requests, want %d", got, want)
			}

			x := exportAudit(t, e.audit)
			out, ok := x.outcomes[reqID]
			if _, intent := x.intents[reqID]; !ok || !intent {
				t.Fatalf("request %s: intent %v, outcome %v; want both", reqID, intent, ok)
			}
			if out.Status != tt.status {
				t.Errorf("outcome status %d, want %d", out.Status, tt.status)
			}
			if (tt.auditError == "") != (out.Error == "") || !regexp.MustCompile(tt.auditError).MatchString(out.Error) {
				t.Errorf("outcome error %q, want one matching %q", out.Error, tt.auditError)
			}
			if tt.withheld != "" && !slices.Contains(out.Withheld, tt.withheld) {
				t.Errorf("outcome withheld %v, want %s among them", out.Withheld, tt.withheld)
			}
			if strings.Contains(x.text, birthNumber) {
				t.Error("the raw birth number is in the audit log")
			}
			e.assertNoSecrets(t, "audit log", x.text)
			if strings.Contains(e.logs.String(), birthNumber) {
				t.Error("the raw birth number is in the log")
			}
			e.assertNoSecrets(t, "log", e.logs.String())

			// Recovery: the fault is gone, so is its effect.
			time.Sleep(faultIdle)
			if resp, body := call(t, e.app, "GET", e.gatewayURL()+path, "", under("dev-kyc", "kyc-onboarding")); resp.StatusCode != http.StatusOK {
				t.Errorf("after the fault: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// directAirbankBody is Air Bank's personal data answer as the vendor sends it.
func (e *devEnv) directAirbankBody(t *testing.T) []byte {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevSandboxRootCert), ServerName: "localhost"}}}
	resp, body := call(t, c, "GET", e.sandboxes.Airbank.URL+"/openapi/glClientIdentity/v1/personalData", "", map[string]string{
		"Authorization": "Bearer " + e.directAirbankToken(t), "Apikey": e.creds.AirbankAPIKey})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("direct call: %d", resp.StatusCode)
	}
	return body
}

// sandboxServerTemplate is a serving certificate for the given names on loopback.
func sandboxServerTemplate(names ...string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

// wrongCACert names Air Bank's host but comes from a CA the profile does not pin.
func wrongCACert(t *testing.T) *tls.Certificate {
	t.Helper()
	ca, err := certs.NewCA(pkix.Name{CommonName: "not the vendor's CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return issueServing(t, ca, "api.airbank.cz", "localhost")
}

// wrongHostCert comes from the pinned sandbox CA but names another host.
func (e *devEnv) wrongHostCert(t *testing.T) *tls.Certificate {
	t.Helper()
	certPEM, err := os.ReadFile(e.pki.Path(certs.DevSandboxRootCert))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(certs.KeyFile(e.pki.Path(certs.DevSandboxRootCert)))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.ParseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return issueServing(t, ca, "vendor.invalid")
}

func issueServing(t *testing.T, ca *certs.CA, names ...string) *tls.Certificate {
	t.Helper()
	cert, key, err := ca.Issue(sandboxServerTemplate(names...))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}
