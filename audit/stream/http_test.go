package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an HTTPS endpoint that refuses the first failures requests (503)
// and keeps the record lines of the rest, as decode reads them.
type receiver struct {
	srv      *httptest.Server
	failures atomic.Int64
	mu       sync.Mutex
	got      []string
	auth     []string
}

func newReceiver(t *testing.T, failures int64, decode func(t *testing.T, body []byte) []string) *receiver {
	rc := &receiver{}
	rc.failures.Store(failures)
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if rc.failures.Add(-1) >= 0 {
			http.Error(w, "indexer busy", http.StatusServiceUnavailable)
			return
		}
		lines := decode(t, body)
		rc.mu.Lock()
		rc.got, rc.auth = append(rc.got, lines...), append(rc.auth, r.Header.Get("Authorization"))
		rc.mu.Unlock()
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) lines() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// The HTTP sinks: JSON lines carry the stored lines as they are; HEC events
// carry each as its event, with the node as host and the record's time; OTLP
// logs carry each as a log body with its sequence number. A receiver that
// answers 503 gets the batch again, and every record arrives in order.
func TestHTTPSinks(t *testing.T) {
	jsonl := func(t *testing.T, body []byte) []string {
		var out []string
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		return out
	}
	hec := func(t *testing.T, body []byte) []string {
		var out []string
		dec := json.NewDecoder(bytes.NewReader(body))
		for dec.More() {
			var ev struct {
				Time       float64         `json:"time"`
				Host       string          `json:"host"`
				Sourcetype string          `json:"sourcetype"`
				Event      json.RawMessage `json:"event"`
			}
			if err := dec.Decode(&ev); err != nil || ev.Host != "node-1" || ev.Sourcetype != "consentgate:audit" || ev.Time < 1e9 {
				t.Errorf("HEC event %+v: %v", ev, err)
			}
			out = append(out, string(ev.Event))
		}
		return out
	}
	otlp := func(t *testing.T, body []byte) []string {
		var req collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("OTLP request: %v", err)
			return nil
		}
		var out []string
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					if lr.Attributes[0].Key != "consentgate.audit.seq" || uint64(lr.Attributes[0].Value.GetIntValue()) != seqOf(t, lr.Body.GetStringValue()) {
						t.Errorf("OTLP record attributes %v", lr.Attributes)
					}
					out = append(out, lr.Body.GetStringValue())
				}
			}
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		decode   func(*testing.T, []byte) []string
		sink     func(url string, c *http.Client) Sink
		wantAuth string
	}{
		{"jsonl", jsonl, func(u string, c *http.Client) Sink {
			return &HTTP{URL: u, Format: FormatJSONL, Token: "t0k", Client: c}
		}, "Bearer t0k"},
		{"hec", hec, func(u string, c *http.Client) Sink {
			return &HTTP{URL: u, Format: FormatHEC, Token: "t0k", Host: "node-1", Client: c}
		}, "Splunk t0k"},
		{"otlp", otlp, func(u string, c *http.Client) Sink { return &OTLP{URL: u, Node: "node-1", LogID: "log", Client: c} }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, 2, tt.decode)
			l := openLog(t)
			appendN(t, l, 120)
			s := &Stream{Name: tt.name, Source: l, Sink: tt.sink(rc.srv.URL, rc.srv.Client()), Batch: 50,
				Cursor: NewCursor(filepath.Join(t.TempDir(), "c")), MinBackoff: 10 * time.Millisecond}
			run(t, s)
			stored := lines(t, l)
			eventually(t, 10*time.Second, "every record delivered", func() bool { return len(rc.lines()) == len(stored) })
			for i, line := range rc.lines() {
				if seq := seqOf(t, line); seq != uint64(i+1) || line != stored[seq] {
					t.Fatalf("record %d arrived as %s (want seq %d, stored %s)", seq, line, i+1, stored[uint64(i+1)])
				}
			}
			if st := s.Stats(); st.Failures != 2 || st.Delivered != uint64(len(stored)) || st.Lag != 0 {
				t.Errorf("stats %+v: want the two refused batches counted, everything delivered", st)
			}
			if rc.auth[0] != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", rc.auth[0], tt.wantAuth)
			}
		})
	}
}

// An OTLP receiver that answers 200 but rejects records (partial success) has
// not taken the batch: it is counted as a failure and sent again.
func TestOTLPPartialRejectionIsAFailure(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		resp := &collogs.ExportLogsServiceResponse{}
		if calls.Add(1) == 1 {
			resp.PartialSuccess = &collogs.ExportLogsPartialSuccess{RejectedLogRecords: 3, ErrorMessage: "over quota"}
		}
		b, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	defer srv.Close()
	l := openLog(t)
	appendN(t, l, 10)
	s := &Stream{Name: "otel", Source: l, Sink: &OTLP{URL: srv.URL, Client: srv.Client()}, Cursor: NewCursor(filepath.Join(t.TempDir(), "c")),
		MinBackoff: 10 * time.Millisecond}
	run(t, s)
	eventually(t, 10*time.Second, "the batch delivered on the second try", func() bool { return s.Stats().Lag == 0 })
	if st := s.Stats(); st.Failures != 1 || calls.Load() != 2 {
		t.Errorf("stats %+v after %d requests: want the rejected batch counted once and sent again", st, calls.Load())
	}
}
