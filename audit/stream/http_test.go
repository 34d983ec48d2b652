package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
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
	// The OTLP receiver decodes as the OpenTelemetry Collector does (pdata).
	otlp := func(t *testing.T, body []byte) []string {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			t.Errorf("OTLP request: %v", err)
			return nil
		}
		var out []string
		rls := req.Logs().ResourceLogs()
		for i := range rls.Len() {
			if name, _ := rls.At(i).Resource().Attributes().Get("service.name"); name.Str() != "consentgate" {
				t.Errorf("service.name %q", name.Str())
			}
			sls := rls.At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					lr := lrs.At(k)
					seq, _ := lr.Attributes().Get("consentgate.audit.seq")
					if uint64(seq.Int()) != seqOf(t, lr.Body().Str()) || lr.Timestamp() == 0 {
						t.Errorf("OTLP record: seq attribute %d, time %v, body %.80s", seq.Int(), lr.Timestamp(), lr.Body().Str())
					}
					out = append(out, lr.Body().Str())
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
			// The receiver has the lines a moment before the sink has its answer.
			eventually(t, 5*time.Second, "the stream counts everything delivered", func() bool { return s.Stats().Lag == 0 })
			if st := s.Stats(); st.Failures != 2 || st.Delivered != uint64(len(stored)) {
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

// A receiver behind something that redirects (a login page, a plain-http
// hop) has not taken the batch: the sinks' client follows no redirect, so the
// batch fails and is sent again, and the token never goes to the new place.
func TestRedirectsAreNotDelivery(t *testing.T) {
	var plain atomic.Int64
	insecure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			plain.Add(1)
		}
	}))
	defer insecure.Close()
	var posts atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			code := http.StatusFound
			if posts.Load()%2 == 0 {
				code = http.StatusTemporaryRedirect
			}
			http.Redirect(w, r, insecure.URL+"/login", code)
			return
		}
		w.Write([]byte("<html>login</html>")) // what a GET after a 302 would get
	}))
	defer srv.Close()
	client := NewClient(srv.Client().Transport.(*http.Transport).TLSClientConfig)
	l := openLog(t)
	appendN(t, l, 20)
	s := &Stream{Name: "splunk", Source: l, Sink: &HTTP{URL: srv.URL, Format: FormatHEC, Token: "s3cr3t-hec", Client: client},
		Cursor: NewCursor(filepath.Join(t.TempDir(), "c")), MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	run(t, s)
	eventually(t, 5*time.Second, "a few tries", func() bool { return posts.Load() >= 4 })
	if st := s.Stats(); st.Acked != 0 || st.Up || st.Failures == 0 {
		t.Errorf("stats %+v: a redirected batch counted as delivered", st)
	}
	if plain.Load() != 0 {
		t.Error("the token followed a redirect to plain http")
	}
}

// A stream that stops (its cursor cannot be kept) shows as down; one whose
// cursor is past the log's head (audit.db put back from a backup) refuses to
// run rather than skip the records written under those numbers again.
func TestStreamStopsVisibly(t *testing.T) {
	l := openLog(t)
	appendN(t, l, 5)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	dir := t.TempDir()
	s := &Stream{Name: "a", Source: l, Sink: &HTTP{URL: srv.URL, Client: srv.Client()}, Cursor: NewCursor(filepath.Join(dir, "sub", "c"))}
	os.WriteFile(filepath.Join(dir, "sub"), []byte("not a directory"), 0o600)
	if err := s.Run(t.Context()); err == nil || s.Stats().Up {
		t.Errorf("a stream whose cursor cannot be saved: %v, %+v", err, s.Stats())
	}
	ahead := NewCursor(filepath.Join(dir, "ahead"))
	ahead.Save(l.LogID(), 5000)
	s = &Stream{Name: "b", Source: l, Sink: &HTTP{URL: srv.URL, Client: srv.Client()}, Cursor: ahead}
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "past the log's head") {
		t.Errorf("a cursor past the head: %v", err)
	}
}

// An error names the receiver without what could be a credential.
func TestRedactedURL(t *testing.T) {
	if got := redacted("https://u:hunter2@siem.test:8088/services/collector?token=qs-secret#x"); got != "https://siem.test:8088/services/collector" {
		t.Errorf("redacted: %s", got)
	}
}
