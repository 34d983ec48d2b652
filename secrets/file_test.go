package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := WriteFile(path, map[string]map[string]string{"vendors/a": {"api_key": "s3cr3t-value"}}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", info.Mode().Perm())
	}
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), Ref{"vendors/a", "api_key"})
	if err != nil || got.Value != "s3cr3t-value" || got.Version == "" {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	_, err = s.Get(context.Background(), Ref{"vendors/a", "nope"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "vendors/a#nope") {
		t.Fatalf("missing key: err = %v", err)
	}

	// A rotated value gets a new version; a broken file keeps the old values.
	if err := WriteFile(path, map[string]map[string]string{"vendors/a": {"api_key": "rotated"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	rot, _ := s.Get(context.Background(), Ref{"vendors/a", "api_key"})
	if rot.Value != "rotated" || rot.Version == got.Version {
		t.Fatalf("after rotation: %+v (old version %s)", rot, got.Version)
	}
	if err := os.WriteFile(path, []byte("vendors/a: [unclosed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("broken file reloaded without error")
	}
	if kept, _ := s.Get(context.Background(), Ref{"vendors/a", "api_key"}); kept.Value != "rotated" {
		t.Fatalf("broken reload lost the previous values: %q", kept.Value)
	}
}

func TestFileStoreRefusesReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(path, []byte("a:\n  b: topsecret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFile(path)
	if !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("err = %v, want ErrInsecureFile", err)
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Fatal("error leaks the secret value")
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr bool
	}{
		{"vendors/kb#api_key", Ref{"vendors/kb", "api_key"}, false},
		{"vendors/kb", Ref{}, true},
		{"#key", Ref{}, true},
		{"a#b#c", Ref{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRef(%q) = %v, %v", tt.in, got, err)
		}
	}
}
