package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fullRecord has every member set, and strings that need escaping.
func fullRecord() Record {
	allow := false
	return Record{
		Seq: 42, Time: time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC), Node: "node-1", Kind: KindOutcome,
		RequestID: "req-1", DecisionID: "dec-1", PolicyRevision: "rev-7", App: "onboarding-web", Vendor: "airbank",
		Operation: "airbank.personalData", Method: "GET", PathTemplate: "/openapi/glClientIdentity/v1/personalData",
		ConsentID: "c-1", Purpose: "kyc-onboarding", SubjectHMAC: HMAC(testHMACKey, "user-42"),
		Identifiers: []string{HMAC(testHMACKey, testBirthNumber)}, Allow: &allow,
		Reasons: []string{"consent \"revoked\"", "tab\there", "ĉu <b>&"}, Disclosed: []string{"names"},
		Withheld: []string{"data[].accountNumber.iban"}, Status: 403, LatencyUS: -1, BytesIn: 10, BytesOut: 20,
		Error: "back\\slash \x01", Detail: map[string]string{"z": "last", "a": "first", "m": "\u2028"},
		PrevHash: genesis("00000000-0000-4000-8000-000000000001"),
	}
}

// The canonical form is the log's file format: a change to it breaks every existing
// log. The golden file pins it, and the hash of a fixed record pins the chain rule.
func TestCanonicalForm(t *testing.T) {
	r := fullRecord()
	raw, _ := decodeHash(r.PrevHash)
	sum := chainHash(raw, recordBody(nil, &r))
	r.Hash = hex.EncodeToString(sum[:])
	got := recordLine(nil, &r)
	golden := filepath.Join("testdata", "canonical_record.golden")
	if *update {
		os.WriteFile(golden, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("canonical form changed:\n got %s\nwant %s", got, want)
	}

	// It is JSON that encoding/json reads back to the same record.
	back, stub, err := parseLine(got)
	if err != nil || stub {
		t.Fatalf("parseLine: %v", err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, r)
	}
	var viaJSON Record
	if err := json.Unmarshal(got, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, r) {
		t.Errorf("encoding/json reads %+v, %v", viaJSON, err)
	}
	// The body is the line without its last two members.
	if body := recordBody(nil, &r); !bytes.HasPrefix(got, body[:len(body)-1]) || bytes.Contains(body, []byte("prev_hash")) {
		t.Errorf("body %s", body)
	}
}

func TestCanonicalFormOmitsEmptyMembers(t *testing.T) {
	r := Record{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Node: "n", Kind: KindSystem,
		Identifiers: []string{}, Detail: map[string]string{}}
	want := `{"seq":1,"time":"2026-01-02T03:04:05Z","node":"n","kind":"system"}`
	if got := string(recordBody(nil, &r)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	allow := false
	r.Allow = &allow
	if got := string(recordBody(nil, &r)); !strings.HasSuffix(got, `"allow":false}`) {
		t.Errorf("a false allow must be kept: %s", got)
	}
}

// encoding/json forgives spellings the canonical form does not have; parseLine must not.
func TestParseLineRefusesOtherSpellings(t *testing.T) {
	r := fullRecord()
	r.Hash = strings.Repeat("a", 64)
	line := string(recordLine(nil, &r))
	for name, bad := range map[string]string{
		"key case":         strings.Replace(line, `"vendor"`, `"VENDOR"`, 1),
		"escape":           strings.Replace(line, `"airbank"`, `"\u0061irbank"`, 1),
		"duplicate member": strings.Replace(line, `"vendor":"airbank"`, `"vendor":"kb","vendor":"airbank"`, 1),
		"time zone":        strings.Replace(line, `10:00:00.123456Z`, `11:00:00.123456+01:00`, 1),
		"trailing zero":    strings.Replace(line, `.123456Z`, `.1234560Z`, 1),
		"white space":      strings.Replace(line, `"seq":42`, `"seq": 42`, 1),
		"unknown member":   strings.Replace(line, `"seq":42`, `"seq":42,"extra":1`, 1),
		"detail order": strings.Replace(strings.Replace(line, `"detail":{"a":"first",`, `"detail":{`, 1),
			`"z":"last"}`, `"z":"last","a":"first"}`, 1),
		"null allow":        strings.Replace(line, `"allow":false`, `"allow":null`, 1),
		"empty member":      strings.Replace(line, `"error":`, `"identifiers":[],"error":`, 1),
		"escaped slash":     strings.Replace(line, `/openapi`, `\/openapi`, 1),
		"trailing new line": line + "\n",
	} {
		if bad == line {
			t.Fatalf("%s: the replacement did nothing", name)
		}
		if _, _, err := parseLine([]byte(bad)); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
}

func TestPublicKeyPEM(t *testing.T) {
	pub := newKey(t).Public().(ed25519.PublicKey)
	pemBytes := PublicKeyPEM(pub)
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("PEM:\n%s", pemBytes)
	}
	back, err := ParsePublicKeyPEM(pemBytes)
	if err != nil || !pub.Equal(back) {
		t.Fatalf("ParsePublicKeyPEM: %v", err)
	}
	if PublicKeyPEM(pub[:10]) != nil {
		t.Error("PEM of a short key")
	}
	for name, in := range map[string]string{
		"empty":       "",
		"private key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0, 0, 0}})),
		"garbage":     "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	} {
		if _, err := ParsePublicKeyPEM([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if len(Fingerprint(pub)) != 64 {
		t.Errorf("fingerprint %q", Fingerprint(pub))
	}
}

// TestSizeHintCoversAGatewayRecord: the hint must cover the stored line of a
// typical call's intent record (its policy input is JSON, so full of escapes),
// or every record is encoded through several reallocations.
func TestSizeHintCoversAGatewayRecord(t *testing.T) {
	allow := true
	input := `{"app":{"id":"onboarding-web","role":"app","uri":"spiffe://consentgate.dev/app/onboarding-web"},` +
		`"vendor":"kb","operation":"kb.identity","method":"GET","path":"/v1/clients/me/identity","body":"json",` +
		`"purpose":"kyc-onboarding","consent_id":"c-0123456789abcdef","consent":{"id":"c-0123456789abcdef",` +
		`"app":"onboarding-web","vendors":["kb","airbank"],"purposes":["kyc-onboarding"],` +
		`"categories":["identity","address","document","national_id"],"status":"active",` +
		`"granted_at":"2026-11-22T10:00:00Z","expires_at":"2027-11-22T10:00:00Z"},"request":{"fields":[]},` +
		`"quota":{"remaining":0,"known":false},"now":"2026-11-22T10:00:01Z"}`
	r := Record{Seq: 123456, Time: time.Date(2026, 11, 22, 10, 0, 1, 123456789, time.UTC), Node: "gw-1", Kind: KindIntent,
		RequestID: "0f8e2d7c-8b1a-4c7e-9f00-123456789abc", DecisionID: "7a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
		PolicyRevision: "0123456789abcdef", App: "onboarding-web", Vendor: "kb", Operation: "kb.identity", Method: "GET",
		PathTemplate: "/v1/clients/me/identity", ConsentID: "c-0123456789abcdef", Purpose: "kyc-onboarding",
		SubjectHMAC: strings.Repeat("ab", 32), Allow: &allow, Reasons: []string{"consent active", "purpose covered"},
		Detail: map[string]string{"policy_input": input}, PrevHash: strings.Repeat("cd", 32), Hash: strings.Repeat("ef", 32)}
	if line, hint := recordLine(nil, &r), sizeHint(&r); len(line) > hint {
		t.Errorf("stored line is %d bytes, hint %d", len(line), hint)
	}
}
