package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tracing section must point at a collector that keeps span data private.
func TestTracingConfig(t *testing.T) {
	for _, tt := range []struct{ tracing, want string }{
		{"tracing:\n  endpoint: http://collector.example:4318\n", "tracing.endpoint"},
		{"tracing:\n  endpoint: https://collector.example:4318\n  sample_ratio: 2\n", "tracing.sample_ratio"},
		{"tracing:\n  sample_ratio: 0.5\n", "tracing.endpoint"},
		{"tracing:\n  endpoint: ftp://collector\n", "tracing.endpoint"},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "c.yaml")
		os.WriteFile(file, []byte("node: n\ntrust_domain: t.local\ndata_dir: "+dir+"\nlisten:\n  gateway: 127.0.0.1:0\n"+
			"tls: {cert_file: a, key_file: b, client_ca_file: c}\nsecrets: {provider: file, file: {path: s}}\npolicy: {dir: p}\n"+
			"keys: {subject_hmac: a#b, field_hmac: a#b, audit_signing: a#b}\nvendors: [v.yaml]\n"+tt.tracing), 0o600)
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one naming %s", tt.tracing, err, tt.want)
		}
	}
}
