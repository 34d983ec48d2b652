package secrets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileStore is the dev secret provider: a YAML file of path → key → value, which
// must be readable by its owner only. It is loaded whole and swapped atomically by
// Reload, so a bad edit keeps the previous values.
//
//	vendors/airbank:
//	  api_key: "…"
type FileStore struct {
	path string
	data atomic.Pointer[fileData]
}

type fileData struct {
	values map[string]map[string]string
	// versions are the values' fingerprints, computed once per read of the
	// file rather than on every call that attaches a secret.
	versions map[string]map[string]string
	fetched  time.Time
}

var _ Provider = (*FileStore)(nil)

// OpenFile loads the file store at path.
func OpenFile(path string) (*FileStore, error) {
	f := &FileStore{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the file; on any error the previous values stay in use.
func (f *FileStore) Reload() error {
	values, err := ReadFile(f.path)
	if err != nil {
		return err
	}
	versions := make(map[string]map[string]string, len(values))
	for path, keys := range values {
		versions[path] = make(map[string]string, len(keys))
		for k, v := range keys {
			versions[path][k] = fingerprint(v)
		}
	}
	f.data.Store(&fileData{values: values, versions: versions, fetched: time.Now()})
	return nil
}

// ReadFile reads a file store whole (path → key → value), refusing a file
// others can read. `consentgate dev --vault` seeds its dev Vault with it.
func ReadFile(path string) (map[string]map[string]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600 (chmod 600 %s)", ErrInsecureFile, path, info.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	var values map[string]map[string]string
	if err := yaml.Unmarshal(raw, &values); err != nil {
		// yaml errors quote at most a type name and a line, never a value.
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	return values, nil
}

// Get returns the value at ref.
func (f *FileStore) Get(_ context.Context, ref Ref) (Secret, error) {
	d := f.data.Load()
	v, ok := d.values[ref.Path][ref.Key]
	if !ok {
		return Secret{}, fmt.Errorf("%w: %s in %s", ErrNotFound, ref, f.path)
	}
	return Secret{Value: v, Version: d.versions[ref.Path][ref.Key], FetchedAt: d.fetched}, nil
}

// WriteFile writes values as a file store, owner-only, replacing the file
// atomically so a reader never sees half of it.
func WriteFile(path string, values map[string]map[string]string) error {
	raw, err := yaml.Marshal(values)
	if err != nil {
		return fmt.Errorf("encoding secrets: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secrets-*")
	if err != nil {
		return fmt.Errorf("writing secrets file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing secrets file: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("writing secrets file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing secrets file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing secrets file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing secrets file: %w", err)
	}
	return nil
}
