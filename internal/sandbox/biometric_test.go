package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// facePhoto is base64 of a JPEG start; the sandbox checks encoding, not content.
var facePhoto = base64.StdEncoding.EncodeToString([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00sandbox face"))

func createBody(key string, metadata any) string {
	body := map[string]any{"api_key": key}
	if metadata != nil {
		body["metadata"] = metadata
	}
	b, _ := json.Marshal(body)
	return string(b)
}

type createdSession struct {
	SessionID    string   `json:"session_id"`
	Technologies []string `json:"technologies"`
}

func createSession(t *testing.T, c *http.Client, set *Set, key string, metadata any) createdSession {
	t.Helper()
	resp := send(t, c, http.MethodPost, set.Biometric.URL+biometricCreatePath, createBody(key, metadata), "Content-Type", "application/json")
	if resp.status != http.StatusOK {
		t.Fatalf("create: status %d: %s", resp.status, resp.body)
	}
	s := decode[createdSession](t, resp.body)
	if _, err := uuid.Parse(s.SessionID); err != nil {
		t.Fatalf("session_id %q is not a UUID", s.SessionID)
	}
	return s
}

func sessionQuery(sessionID, key string) string {
	return "?" + url.Values{"session_id": {sessionID}, "flow_api_key": {key}}.Encode()
}

func TestBiometricFlow(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	key := cfg.Credentials.BiometricFlowAPIKey
	iin := kazakhIIN(date(1984, 10, 5), false, 811)

	s := createSession(t, c, set, key, map[string]any{
		"face2face": map[string]any{"photo1": facePhoto},
		"edocument": map[string]any{
			"iin":        map[string]any{"value": iin, "changeable": false},
			"phone":      map[string]any{"value": "+77000000303", "changeable": false},
			"skip_input": true,
		},
		"general": map[string]any{"interchangeable_tech": []string{"LD", "DR"}},
	})
	if want := []string{"LDHP", "ED", "F2F"}; !slices.Equal(s.Technologies, want) {
		t.Errorf("technologies %v, want %v", s.Technologies, want)
	}

	resp := send(t, c, http.MethodGet, set.Biometric.URL+biometricResultPath+sessionQuery(s.SessionID, key), "")
	if resp.status != http.StatusOK {
		t.Fatalf("result: status %d: %s", resp.status, resp.body)
	}
	type resultView struct {
		ID           string           `json:"id"`
		Technologies []flowTechnology `json:"technologies"`
		Liveness     *livenessResult  `json:"liveness_result"`
		Face2Face    *face2faceResult `json:"face2face_result"`
		EDocument    *edocumentResult `json:"edocument_result"`
		DR           json.RawMessage  `json:"document_recognition_result"`
	}
	result := decode[resultView](t, resp.body)
	if result.ID != s.SessionID || len(result.Technologies) != 3 || result.Technologies[0].Name == "" {
		t.Errorf("result id %q, technologies %+v", result.ID, result.Technologies)
	}
	if result.Liveness == nil || !result.Liveness.IsLive || result.Face2Face == nil || !result.Face2Face.IsSamePerson {
		t.Errorf("liveness %+v, face2face %+v", result.Liveness, result.Face2Face)
	}
	if result.DR != nil {
		t.Errorf("document_recognition_result present although DR did not run: %s", result.DR)
	}
	ed := result.EDocument
	if ed == nil {
		t.Fatal("no edocument_result")
	}
	if ed.IIN != iin || ed.PersonalNumber != iin || ed.Phone != "+77000000303" || ed.DateOfBirth != "05.10.1984" || ed.Gender != "MALE" {
		t.Errorf("edocument_result %+v does not describe IIN %s", ed, iin)
	}
	if ed.FirstName == "" || ed.LastName == "" || ed.Patronymic == "" || ed.DocumentNumber == "" || ed.Authority == "" {
		t.Errorf("edocument_result lacks person data: %+v", ed)
	}

	video := send(t, c, http.MethodGet, set.Biometric.URL+biometricVideoPath+sessionQuery(s.SessionID, key), "")
	if video.status != http.StatusOK || video.header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("video: status %d, Content-Type %q", video.status, video.header.Get("Content-Type"))
	}
	if len(video.body) < 1024 || !bytes.Equal(video.body[4:8], []byte("ftyp")) {
		t.Errorf("video has %d bytes starting %q", len(video.body), video.body[:8])
	}
	if again := send(t, c, http.MethodGet, set.Biometric.URL+biometricVideoPath+sessionQuery(s.SessionID, key), ""); !bytes.Equal(again.body, video.body) {
		t.Error("the same session downloads a different video")
	}
	lastRecorded(t, set.Biometric, 4)
}

func TestBiometricTechnologiesFollowMetadata(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	key := cfg.Credentials.BiometricFlowAPIKey
	iin := kazakhIIN(date(1999, 3, 8), true, 5)

	tests := []struct {
		name     string
		metadata any
		want     []string
		results  []string
	}{
		{"no metadata", nil, []string{"LDHP", "DR"}, []string{"liveness_result", "document_recognition_result"}},
		{"empty metadata", map[string]any{}, []string{"LDHP", "DR"}, []string{"liveness_result", "document_recognition_result"}},
		{"photo", map[string]any{"face2face": map[string]any{"photo1": facePhoto}},
			[]string{"LDHP", "F2F"}, []string{"liveness_result", "face2face_result"}},
		{"iin", map[string]any{"edocument": map[string]any{"iin": map[string]any{"value": iin}}},
			[]string{"LDHP", "ED"}, []string{"liveness_result", "edocument_result"}},
		{"phone only", map[string]any{"edocument": map[string]any{"phone": map[string]any{"value": "+77000000404"}}},
			[]string{"LDHP", "ED"}, []string{"liveness_result", "edocument_result"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := createSession(t, c, set, key, tt.metadata)
			if !slices.Equal(s.Technologies, tt.want) {
				t.Errorf("technologies %v, want %v", s.Technologies, tt.want)
			}
			resp := send(t, c, http.MethodGet, set.Biometric.URL+biometricResultPath+sessionQuery(s.SessionID, key), "")
			result := decode[map[string]json.RawMessage](t, resp.body)
			var got []string
			for field := range result {
				if strings.HasSuffix(field, "_result") {
					got = append(got, field)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.results))
			if !slices.Equal(got, want) {
				t.Errorf("result fields %v, want %v", got, want)
			}
			if raw, ok := result["document_recognition_result"]; ok {
				dr := decode[documentRecognitionResult](t, raw)
				if _, _, err := parseIIN(dr.PersonalNumber); err != nil || dr.FirstName == "" || dr.DocumentNumber == "" || dr.Authority == "" {
					t.Errorf("document_recognition_result %+v: %v", dr, err)
				}
			}
		})
	}
}

func TestBiometricCreateRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	key := cfg.Credentials.BiometricFlowAPIKey
	create := set.Biometric.URL + biometricCreatePath
	edoc := func(field string, value any) map[string]any {
		return map[string]any{"edocument": map[string]any{field: value}}
	}

	tests := []struct {
		name   string
		method string
		url    string
		body   string
		status int
		detail string
	}{
		{"key missing", "POST", create, `{}`, 401, "api_key"},
		{"key empty", "POST", create, createBody("", nil), 401, "api_key"},
		{"key wrong", "POST", create, createBody(key[:len(key)-1], nil), 401, "Invalid"},
		{"key in query only", "POST", create + "?flow_api_key=" + key, `{}`, 400, "query"},
		{"key in query as well", "POST", create + "?api_key=" + key, createBody(key, nil), 400, "query"},
		{"key not a string", "POST", create, `{"api_key": 12345}`, 400, "api_key"},
		{"not JSON", "POST", create, `api_key=` + key, 400, "JSON"},
		{"photo not base64", "POST", create, createBody(key, map[string]any{"face2face": map[string]any{"photo1": "not base64!"}}), 400, "metadata.face2face.photo1"},
		{"photo empty", "POST", create, createBody(key, map[string]any{"face2face": map[string]any{"photo1": ""}}), 400, "metadata.face2face.photo1"},
		{"iin 11 digits", "POST", create, createBody(key, edoc("iin", map[string]any{"value": "93022144000"})), 400, "metadata.edocument.iin.value"},
		{"iin with letters", "POST", create, createBody(key, edoc("iin", map[string]any{"value": "93022144000A"})), 400, "metadata.edocument.iin.value"},
		{"iin not an object", "POST", create, createBody(key, edoc("iin", "930221440000")), 400, "metadata.edocument.iin"},
		{"changeable not a boolean", "POST", create, createBody(key, edoc("iin", map[string]any{"value": "930221440000", "changeable": "no"})), 400, "metadata.edocument.iin.changeable"},
		{"phone without +", "POST", create, createBody(key, edoc("phone", map[string]any{"value": "87000000101"})), 400, "metadata.edocument.phone.value"},
		{"skip_input not a boolean", "POST", create, createBody(key, edoc("skip_input", "yes")), 400, "metadata.edocument.skip_input"},
		{"skip_input without the phone", "POST", create, createBody(key, map[string]any{"edocument": map[string]any{
			"iin": map[string]any{"value": "930221440000", "changeable": false}, "skip_input": true}}), 400, "skip_input"},
		{"skip_input with a changeable value", "POST", create, createBody(key, map[string]any{"edocument": map[string]any{
			"iin":   map[string]any{"value": "930221440000", "changeable": false},
			"phone": map[string]any{"value": "+77000000101"}, "skip_input": true}}), 400, "skip_input"},
		{"unknown technology", "POST", create, createBody(key, map[string]any{"general": map[string]any{"interchangeable_tech": []string{"LD", "XX"}}}), 400, "interchangeable_tech[1]"},
		{"metadata not an object", "POST", create, createBody(key, "face2face"), 400, "metadata"},
		{"wrong method", "GET", create, "", 405, "GET"},
		{"no trailing slash", "POST", strings.TrimSuffix(create, "/"), createBody(key, nil), 404, "Not found"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, c, tt.method, tt.url, tt.body, "Content-Type", "application/json")
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if detail := decode[map[string]string](t, resp.body)["detail"]; !strings.Contains(detail, tt.detail) {
				t.Errorf("detail %q does not name %q", detail, tt.detail)
			}
			if rec := lastRecorded(t, set.Biometric, i+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}
}

func TestBiometricResultRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	key := cfg.Credentials.BiometricFlowAPIKey
	s := createSession(t, c, set, key, nil)

	for _, path := range []string{biometricResultPath, biometricVideoPath} {
		base := set.Biometric.URL + path
		tests := []struct {
			name   string
			method string
			url    string
			body   string
			status int
		}{
			{"key in the body instead", "GET", base + "?session_id=" + s.SessionID, createBody(key, nil), 401},
			{"key under the create name", "GET", base + "?" + url.Values{"session_id": {s.SessionID}, "api_key": {key}}.Encode(), "", 401},
			{"key wrong", "GET", base + sessionQuery(s.SessionID, key+"x"), "", 401},
			{"session missing", "GET", base + "?flow_api_key=" + key, "", 400},
			{"session unknown", "GET", base + sessionQuery(uuid.NewString(), key), "", 404},
			{"wrong method", "POST", base + sessionQuery(s.SessionID, key), "", 405},
		}
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				n := set.Biometric.Count()
				resp := send(t, c, tt.method, tt.url, tt.body)
				if resp.status != tt.status {
					t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
				}
				if decode[map[string]string](t, resp.body)["detail"] == "" {
					t.Errorf("no detail in %s", resp.body)
				}
				if rec := lastRecorded(t, set.Biometric, n+1); rec.Status != tt.status {
					t.Errorf("recorded status %d", rec.Status)
				}
			})
		}
	}
}

func TestBiometricSessionsExpireAfterTenMinutes(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	clock := newFakeClock()
	cfg.now = clock.Now
	set := startSet(t, cfg)
	c := newClient(t, pki)
	key := cfg.Credentials.BiometricFlowAPIKey
	s := createSession(t, c, set, key, nil)

	status := func(path string) int {
		return send(t, c, http.MethodGet, set.Biometric.URL+path+sessionQuery(s.SessionID, key), "").status
	}
	clock.Advance(10 * time.Minute)
	if got := status(biometricResultPath); got != http.StatusOK {
		t.Errorf("result at 10 minutes: status %d, want 200", got)
	}
	clock.Advance(time.Second)
	for _, path := range []string{biometricResultPath, biometricVideoPath} {
		resp := send(t, c, http.MethodGet, set.Biometric.URL+path+sessionQuery(s.SessionID, key), "")
		if resp.status != http.StatusGone || !strings.Contains(decode[map[string]string](t, resp.body)["detail"], "10 minutes") {
			t.Errorf("%s after 10 minutes: status %d: %s", path, resp.status, resp.body)
		}
	}
	if rec := lastRecorded(t, set.Biometric, 4); rec.Status != http.StatusGone {
		t.Errorf("recorded status %d", rec.Status)
	}
	// A session created now lives on its own clock.
	fresh := createSession(t, c, set, key, nil)
	if resp := send(t, c, http.MethodGet, set.Biometric.URL+biometricResultPath+sessionQuery(fresh.SessionID, key), ""); resp.status != http.StatusOK {
		t.Errorf("fresh session: status %d", resp.status)
	}
}
