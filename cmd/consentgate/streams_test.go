package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/stream"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
	"github.com/prometheus/client_golang/prometheus"
)

// audit.streams becomes one stream per entry: its sink of the type named, the
// token read from the secret store, its cursor under data_dir by name; the
// metrics name each stream and carry no token.
func TestOpenStreams(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets.yaml")
	os.WriteFile(file, []byte("siem:\n  hec: hec-token-0123456789\n"), 0o600)
	p, err := secrets.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{Node: "gw-1", SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := &configs.Config{Node: "gw-1", DataDir: dir, Audit: configs.Audit{Streams: []configs.AuditStream{
		{Name: "soc", Type: "syslog", Address: "127.0.0.1:6514"},
		{Name: "splunk", Type: "http", Format: "hec", URL: "https://splunk.test/services/collector", Token: "siem#hec"},
		{Name: "otel", Type: "otlp", URL: "https://otel.test/v1/logs"},
	}}}
	streams, err := openStreams(t.Context(), cfg, p, l, slog.New(slog.DiscardHandler))
	if err != nil || len(streams) != 3 {
		t.Fatalf("openStreams: %d, %v", len(streams), err)
	}
	if s, ok := streams[0].Sink.(*stream.Syslog); !ok || s.Hostname != "gw-1" {
		t.Errorf("soc: %#v", streams[0].Sink)
	}
	if s, ok := streams[1].Sink.(*stream.HTTP); !ok || s.Token != "hec-token-0123456789" || s.Format != stream.FormatHEC {
		t.Errorf("splunk: %#v", streams[1].Sink)
	}
	if s, ok := streams[2].Sink.(*stream.OTLP); !ok || s.LogID != l.LogID() {
		t.Errorf("otel: %#v", streams[2].Sink)
	}
	if err := streams[1].Cursor.Save("x", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit-streams", "splunk.cursor")); err != nil {
		t.Errorf("cursor not under data_dir/audit-streams: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(stream.Collector(streams))
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, m := range mf {
		all.WriteString(m.String())
		if m.GetName() == "consentgate_audit_stream_lag_records" && len(m.GetMetric()) != 3 {
			t.Errorf("lag series: %d, want one per stream", len(m.GetMetric()))
		}
	}
	if strings.Contains(all.String(), "hec-token") {
		t.Error("a metric carries the token")
	}
}
