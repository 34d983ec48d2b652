package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite docs/schema from the Go types")

const (
	configsDir = "../../configs"
	schemaDir  = "../../docs/schema"
)

// The committed schemas are what the Go types generate: a field added to
// configs without regenerating fails here (make docs regenerates).
func TestSchemasAreCurrent(t *testing.T) {
	for file, v := range Files {
		got, err := Generate(v, configsDir)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(schemaDir, file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run make docs)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/schema/%s is not what the configs types generate; run make docs", file)
		}
	}
}

// Every shipped configuration and vendor profile is valid under the schema,
// and the schema refuses what Load refuses: an unknown key, a wrong type.
func TestShippedFilesValidate(t *testing.T) {
	cfg, vendor := compile(t, "consentgate.schema.json"), compile(t, "vendor.schema.json")
	configs, _ := filepath.Glob(filepath.Join(configsDir, "*.yaml"))
	vendors, _ := filepath.Glob(filepath.Join(configsDir, "vendors", "*.yaml"))
	if len(configs) < 2 || len(vendors) < 5 {
		t.Fatalf("found %d configurations and %d vendor profiles", len(configs), len(vendors))
	}
	for _, f := range configs {
		if err := cfg.Validate(readYAML(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range vendors {
		if err := vendor.Validate(readYAML(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, bad := range []string{"listen: {gateway: ':9443', gatway: ':1'}", "policy: {timeout: 5}", "policy: {timeout: soon}", "apps: {web: {}}"} {
		if err := cfg.Validate(parseYAML(t, []byte(bad))); err == nil {
			t.Errorf("%q is valid under the schema", bad)
		}
	}
}

func compile(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(filepath.Join(schemaDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readYAML(t *testing.T, file string) any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseYAML(t, data)
}

// parseYAML reads YAML into the values JSON Schema validates (string keys,
// float64 numbers).
func parseYAML(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
	case map[any]any:
		m := map[string]any{}
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	}
	return v
}
