package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// spec is a small swagger.json in the shape of Kubernetes': a kind with
// metadata, a spec with an IntOrString, a Quantity map, a free-form object and
// a string map; a recursive kind; and a definition that is no kind.
const spec = `{"definitions": {
  "io.k8s.api.apps.v1.Widget": {
    "description": "Widget is a test kind.",
    "properties": {
      "apiVersion": {"type": "string"},
      "kind": {"type": "string"},
      "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "description": "Standard metadata."},
      "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.WidgetSpec"}
    },
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Widget", "version": "v1"}]
  },
  "io.k8s.api.apps.v1.WidgetSpec": {
    "properties": {
      "replicas": {"type": "integer", "format": "int32"},
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "limits": {"type": "object", "additionalProperties": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
      "raw": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.runtime.RawExtension"},
      "items": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.apps.v1.WidgetItem"}}
    },
    "required": ["replicas"],
    "type": "object"
  },
  "io.k8s.api.apps.v1.WidgetItem": {
    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
    "required": ["name"],
    "type": "object"
  },
  "io.k8s.api.core.v1.Note": {
    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "text": {"type": "string"}},
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Note", "version": "v1"}]
  },
  "io.k8s.api.networking.v1.Rule": {
    "properties": {"kind": {"type": "string"}},
    "type": "object",
    "x-kubernetes-group-version-kind": [
      {"group": "networking.k8s.io", "kind": "Rule", "version": "v1"},
      {"group": "networking.k8s.io", "kind": "Rule", "version": "v1beta1"}
    ]
  },
  "io.k8s.api.ext.v1.Loop": {
    "properties": {"self": {"$ref": "#/definitions/io.k8s.api.ext.v1.Loop"}},
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "ext.example", "kind": "Loop", "version": "v1"}]
  },
  "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
    "description": "ObjectMeta is metadata.",
    "properties": {
      "name": {"type": "string"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}}
    },
    "type": "object"
  },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"format": "int-or-string", "type": "string"},
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
  "io.k8s.apimachinery.pkg.runtime.RawExtension": {"type": "object"}
}}`

func convert(t *testing.T, src string) Result {
	t.Helper()
	res, err := Convert([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func schemaOf(t *testing.T, res Result, file string) map[string]any {
	t.Helper()
	b, ok := res.Files[file]
	if !ok {
		t.Fatalf("no %s among %v", file, keys(res.Files))
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s is not JSON: %v", file, err)
	}
	return s
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func at(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// The names are kubeconform's {{.ResourceKind}}{{.KindSuffix}}: the lower-case
// kind, the first label of the group, the version; one file per version.
func TestFileNames(t *testing.T) {
	res := convert(t, spec)
	want := []string{"note-v1.json", "rule-networking-v1.json", "rule-networking-v1beta1.json", "widget-apps-v1.json"}
	if got := keys(res.Files); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	for _, c := range []struct {
		g    gvk
		want string
	}{
		{gvk{"apps", "v1", "StatefulSet"}, "statefulset-apps-v1.json"},
		{gvk{"", "v1", "ConfigMap"}, "configmap-v1.json"},
		{gvk{"policy", "v1", "PodDisruptionBudget"}, "poddisruptionbudget-policy-v1.json"},
		{gvk{"networking.k8s.io", "v1", "NetworkPolicy"}, "networkpolicy-networking-v1.json"},
		{gvk{"rbac.authorization.k8s.io", "v1", "ClusterRole"}, "clusterrole-rbac-v1.json"},
	} {
		if got := c.g.fileName(); got != c.want {
			t.Errorf("%+v: %s, want %s", c.g, got, c.want)
		}
	}
}

func TestStandalone(t *testing.T) {
	res := convert(t, spec)
	for name, b := range res.Files {
		if strings.Contains(string(b), `"$ref"`) {
			t.Errorf("%s still has a $ref", name)
		}
	}
	s := schemaOf(t, res, "widget-apps-v1.json")
	if got := at(s, "$schema"); got != draft4 {
		t.Errorf("$schema %v", got)
	}
	// The field's description wins over the type's.
	if got := at(s, "properties", "metadata", "description"); got != "Standard metadata." {
		t.Errorf("metadata description %v", got)
	}
	if got := at(s, "properties", "spec", "properties", "items", "items", "properties", "name", "type"); got != "string" {
		t.Errorf("an array item's required field: type %v, want string", got)
	}
}

func TestStrict(t *testing.T) {
	s := schemaOf(t, convert(t, spec), "widget-apps-v1.json")
	for _, path := range [][]string{
		{},
		{"properties", "metadata"},
		{"properties", "spec"},
		{"properties", "spec", "properties", "items", "items"},
	} {
		if got := at(s, append(path, "additionalProperties")...); got != false {
			t.Errorf("%v: additionalProperties %v, want false", path, got)
		}
	}
	// A map keeps its value schema; a free-form object stays open.
	if got := at(s, "properties", "metadata", "properties", "labels", "additionalProperties", "type"); got != "string" {
		t.Errorf("labels values: %v", got)
	}
	if got := at(s, "properties", "spec", "properties", "raw", "additionalProperties"); got != nil {
		t.Errorf("RawExtension got additionalProperties %v: it must accept any object", got)
	}
}

func TestTypes(t *testing.T) {
	s := schemaOf(t, convert(t, spec), "widget-apps-v1.json")
	nullString := []any{"string", "null"}
	cases := []struct {
		path []string
		want any
	}{
		// Required: no null.
		{[]string{"properties", "spec", "properties", "replicas", "type"}, "integer"},
		{[]string{"properties", "spec", "properties", "items", "items", "properties", "name", "type"}, "string"},
		// Optional: null accepted.
		{[]string{"properties", "spec", "properties", "items", "items", "properties", "value", "type"}, nullString},
		{[]string{"properties", "metadata", "properties", "name", "type"}, nullString},
		{[]string{"properties", "spec", "type"}, []any{"object", "null"}},
		// IntOrString and Quantity as the API server reads them.
		{[]string{"properties", "spec", "properties", "port", "oneOf"}, []any{
			map[string]any{"type": "string"}, map[string]any{"type": "integer"}, map[string]any{"type": "null"}}},
		{[]string{"properties", "spec", "properties", "limits", "additionalProperties", "oneOf"}, []any{
			map[string]any{"type": "string"}, map[string]any{"type": "number"}}},
		// The file's own kind and apiVersion only.
		{[]string{"properties", "kind", "enum"}, []any{"Widget"}},
		{[]string{"properties", "apiVersion", "enum"}, []any{"apps/v1"}},
	}
	for _, c := range cases {
		if got := at(s, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	r := schemaOf(t, convert(t, spec), "rule-networking-v1beta1.json")
	if got := at(r, "properties", "kind", "enum"); !reflect.DeepEqual(got, []any{"Rule"}) {
		t.Errorf("Rule kind enum %v", got)
	}
	if got := at(schemaOf(t, convert(t, spec), "note-v1.json"), "properties", "apiVersion", "enum"); !reflect.DeepEqual(got, []any{"v1"}) {
		t.Errorf("core apiVersion enum %v", got)
	}
}

// A recursive kind gets no file (kubeconform then reports it missing, an
// error), and is named in Skipped.
func TestRecursiveKindSkipped(t *testing.T) {
	res := convert(t, spec)
	if _, ok := res.Files["loop-ext-v1.json"]; ok {
		t.Error("the recursive kind has a schema")
	}
	if !slices.Equal(res.Skipped, []string{"ext.example/v1 Loop"}) {
		t.Errorf("skipped %v", res.Skipped)
	}
}

func TestConvertErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"not JSON", `{`, "decoding"},
		{"no definitions", `{"definitions": {}}`, "no definitions"},
		{"no kinds", `{"definitions": {"a.B": {"type": "object"}}}`, "no definition carries"},
		{"dangling ref", `{"definitions": {"a.B": {"properties": {"x": {"$ref": "#/definitions/a.C"}}, "x-kubernetes-group-version-kind": [{"group": "", "kind": "B", "version": "v1"}]}}}`, "unresolvable $ref"},
		{"bad kind list", `{"definitions": {"a.B": {"x-kubernetes-group-version-kind": [{"group": "", "version": "v1"}]}}}`, "lacks kind"},
		{"two definitions, one file", `{"definitions": {
			"a.v1.B": {"x-kubernetes-group-version-kind": [{"group": "", "kind": "B", "version": "v1"}]},
			"b.v1.B": {"x-kubernetes-group-version-kind": [{"group": "", "kind": "B", "version": "v1"}]}}}`, "both map to b-v1.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Convert([]byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// run replaces the output folder as a whole: a schema of an earlier run that
// the spec no longer has does not survive.
func TestRunReplacesFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(src, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "schemas", "v1-standalone-strict")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "stale-v1.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := run([]string{"-swagger", src, "-out", out}, &log); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"note-v1.json", "rule-networking-v1.json", "rule-networking-v1beta1.json", "widget-apps-v1.json"}; !slices.Equal(names, want) {
		t.Errorf("folder holds %v, want %v", names, want)
	}
	if !strings.Contains(log.String(), "4 schemas") || !strings.Contains(log.String(), "ext.example/v1 Loop") {
		t.Errorf("log %q", log.String())
	}
	if err := run([]string{"-swagger", filepath.Join(dir, "missing.json"), "-out", out}, &log); err == nil {
		t.Error("a missing spec was accepted")
	}
	if _, err := os.Stat(filepath.Join(out, "widget-apps-v1.json")); err != nil {
		t.Errorf("a failed run removed the previous schemas: %v", err)
	}
}
