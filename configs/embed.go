package configs

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// FS holds the shipped configuration files and policies: `consentgate dev` runs
// from it, so a fresh clone needs nothing on disk.
//
//go:embed consentgate.yaml dev.yaml vendors/*.yaml policies/*.rego policies/*.yaml policies/.manifest
var FS embed.FS

// WritePolicies copies the shipped policies (with their tests and data) into
// dir, creating it, for a gateway that loads its policy from a directory.
func WritePolicies(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := fs.ReadDir(FS, "policies")
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(FS, "policies/"+e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
