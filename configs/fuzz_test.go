package configs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// Whatever the main file and a vendor profile hold, loading either succeeds
// with a usable configuration or fails with errors that each name the file
// they are about (and a line, where the YAML has one), never a panic.
func FuzzLoad(f *testing.F) {
	main, err := fs.ReadFile(FS, "dev.yaml")
	if err != nil {
		f.Fatal(err)
	}
	vendor, err := fs.ReadFile(FS, "vendors/kb.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(main, vendor)
	f.Add([]byte("node: n\nnode: m\n"), vendor)
	f.Add(main, []byte("id: kb\noperations:\n  - id: kb.x\n    method: GET\n    path: /{a}/{a}\n"))
	f.Add([]byte("vendors: [vendors/kb.yaml]\ntls: {min_version: 1.0}\n"), []byte("id: [1]\n"))
	f.Fuzz(func(t *testing.T, mainYAML, vendorYAML []byte) {
		// Only the one vendor file exists; the others named by dev.yaml are missing.
		fsys := fstest.MapFS{"c/main.yaml": {Data: mainYAML}, "c/vendors/kb.yaml": {Data: vendorYAML}}
		cfg, err := LoadFS(fsys, "c/main.yaml")
		if err == nil {
			if cfg.Node == "" || cfg.TrustDomain == "" || len(cfg.Vendors) == 0 {
				t.Fatalf("loaded without node, trust domain or vendors: %+v", cfg)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) {
			if !strings.Contains(err.Error(), "main.yaml") && !strings.Contains(err.Error(), "kb.yaml") {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		for _, e := range errs {
			if e.File == "" || (e.File != "c/main.yaml" && !strings.HasSuffix(e.File, ".yaml")) {
				t.Fatalf("error without its file: %v", e)
			}
		}
	})
}
