package sandbox

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Each fault reaches a caller the way it would from a real vendor, and clearing it
// brings the documented answer back.
func TestFaults(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	srv := set.Airbank
	url := srv.URL + airbankBasePath + "personalData"
	c := newClient(t, pki)
	auth := airbankAuth(cfg, loginToken(t, set, cfg, "airbank", c).AccessToken)
	normal := send(t, c, http.MethodGet, url, "", auth...)
	if normal.status != http.StatusOK {
		t.Fatalf("without a fault: %d %s", normal.status, normal.body)
	}
	birthNumber := decode[map[string]any](t, normal.body)["birthNumber"].(string)
	afterBirthNumber := bytes.Index(normal.body, []byte(birthNumber)) + len(birthNumber) + 1

	otherCA := newTestCA(t, "not the sandbox CA")
	otherCert, otherKey, err := otherCA.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		fault Fault
		// check gets what the caller saw: the response, its body as far as it
		// arrived, and the error of the call or of reading the body.
		check          func(t *testing.T, resp *http.Response, body []byte, err error)
		recordedStatus int
		notRecorded    bool          // the handshake fails, no request arrives
		wait           time.Duration // the caller's patience; default 10 s
	}{
		{"hang", Fault{Kind: FaultHang}, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			var ne net.Error
			if resp != nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("got %v, %v; want no answer and a client timeout", resp, err)
			}
		}, 0, false, time.Second},
		{"drop", Fault{Kind: FaultDrop}, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			if resp != nil || err == nil {
				t.Errorf("got %v, %v; want no answer", resp, err)
			}
		}, 0, false, 0},
		{"reset after the birth number", Fault{Kind: FaultReset, Cut: afterBirthNumber}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if resp == nil || resp.StatusCode != http.StatusOK || err == nil {
				t.Fatalf("got %v, %v; want a 200 whose body breaks off", resp, err)
			}
			if len(body) == 0 || len(body) > afterBirthNumber || !bytes.HasPrefix(normal.body, body) {
				t.Errorf("received %q, want a prefix of the real answer of at most %d bytes", body, afterBirthNumber)
			}
		}, http.StatusOK, false, 0},
		{"trickle", Fault{Kind: FaultTrickle, Chunk: 97, Interval: 5 * time.Millisecond}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, normal.body) {
				t.Errorf("got %v, %v, %q; want the real answer, slowly", resp, err, body)
			}
		}, http.StatusOK, false, 0},
		{"trickle slower than the caller waits", Fault{Kind: FaultTrickle, Interval: 10 * time.Second}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var ne net.Error
			if resp == nil || resp.StatusCode != http.StatusOK || !errors.As(err, &ne) || !ne.Timeout() || len(body) >= len(normal.body) {
				t.Errorf("got %v, %v after %d bytes; want headers, then a timeout mid-body", resp, err, len(body))
			}
		}, http.StatusOK, false, 2 * time.Second},
		{"5xx", Fault{Kind: FaultAnswer, Status: http.StatusServiceUnavailable, Body: []byte(`{"errors":[]}`)}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable || string(body) != `{"errors":[]}` ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %v, %v, %q", resp, err, body)
			}
		}, http.StatusServiceUnavailable, false, 0},
		{"malformed JSON", Fault{Kind: FaultAnswer, Body: normal.body[:afterBirthNumber]}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, normal.body[:afterBirthNumber]) {
				t.Errorf("got %v, %v, %q", resp, err, body)
			}
		}, http.StatusOK, false, 0},
		{"certificate from another CA", Fault{Certificate: &tls.Certificate{Certificate: [][]byte{otherCert.Raw}, PrivateKey: otherKey}}, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			if _, ok := errors.AsType[*tls.CertificateVerificationError](err); resp != nil || !ok {
				t.Errorf("got %v, %v; want a failed certificate verification", resp, err)
			}
		}, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh connection, so that a certificate fault applies to its handshake.
			client := newClient(t, pki)
			client.Timeout = cmp.Or(tt.wait, 10*time.Second)
			srv.Reset()
			srv.SetFault(tt.fault)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for i := 0; i < len(auth); i += 2 {
				req.Header.Set(auth[i], auth[i+1])
			}
			resp, err := client.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			tt.check(t, resp, body, err)
			if tt.notRecorded {
				if srv.Count() != 0 {
					t.Errorf("%d requests recorded, want none", srv.Count())
				}
			} else if rec := lastRecorded(t, srv, 1); rec.Status != tt.recordedStatus || rec.Header.Get("Authorization") == "" {
				t.Errorf("recorded status %d, want %d", rec.Status, tt.recordedStatus)
			}

			srv.SetFault(Fault{})
			if resp := send(t, newClient(t, pki), http.MethodGet, url, "", auth...); resp.status != http.StatusOK || !bytes.Equal(resp.body, normal.body) {
				t.Errorf("after the fault: %d %s", resp.status, resp.body)
			}
		})
	}
}

// FaultReset and FaultTrickle still enforce the vendor's rules: they cut or slow
// its refusal.
func TestFaultKeepsVendorRules(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	set.Airbank.SetFault(Fault{Kind: FaultTrickle, Chunk: 1000})
	resp := send(t, newClient(t, pki), http.MethodGet, set.Airbank.URL+airbankBasePath+"personalData", "")
	if resp.status != http.StatusUnauthorized || !strings.Contains(string(resp.body), "API_KEY_MISSING") {
		t.Errorf("without credentials under a trickle fault: %d %s", resp.status, resp.body)
	}
}

// The history is bounded; Count still counts every request.
func TestRecordingIsBounded(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	srv := set.KB
	const n = 2*keptRequests + 10
	for i := 0; i < n; i++ {
		srv.httpServer.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/r", nil))
	}
	reqs := srv.Requests()
	if srv.Count() != n || len(reqs) < keptRequests || len(reqs) >= 2*keptRequests {
		t.Errorf("Count %d, %d requests held; want %d and between %d and %d", srv.Count(), len(reqs), n, keptRequests, 2*keptRequests)
	}
}
