package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// draft4 is the dialect of the output: kubeconform compiles schemas as draft 4
// by default, and naming it keeps the compiler from fetching a meta-schema.
const draft4 = "http://json-schema.org/draft-04/schema#"

const refPrefix = "#/definitions/"

// errCycle marks a definition that contains itself (the CRD's JSONSchemaProps):
// inlining it would never end, so its kinds get no file. kubeconform then
// reports "could not find schema" for them: it fails closed, never passes.
var errCycle = errors.New("recursive definition")

// typeOverrides replace definitions whose OpenAPI form says less than the API
// server accepts, as openapi2jsonschema's Kubernetes mode does: an IntOrString
// is an integer or a string (its swagger type says string only), and a Quantity
// is accepted as a JSON number as well as a string ("cpu: 2").
var typeOverrides = map[string]map[string]any{
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}},
	"io.k8s.apimachinery.pkg.api.resource.Quantity":   {"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}},
}

// gvk is one entry of a definition's x-kubernetes-group-version-kind.
type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// apiVersion is what a manifest writes: "apps/v1", or "v1" for the core group.
func (g gvk) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// fileName is the name kubeconform looks for: {{.ResourceKind}}{{.KindSuffix}}.json,
// where ResourceKind is the lower-case kind and KindSuffix is "-" + the first
// label of the group (if any) + "-" + the version (kubeconform's registry.go).
func (g gvk) fileName() string {
	suffix := ""
	if g.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(g.Group, ".")[0])
	}
	return strings.ToLower(g.Kind) + suffix + "-" + strings.ToLower(g.Version) + ".json"
}

// Result is the conversion of a whole spec.
type Result struct {
	// Files maps a file name to its JSON schema.
	Files map[string][]byte
	// Skipped lists the kinds left out because their definition is recursive.
	Skipped []string
}

// Convert turns a swagger.json document into one standalone strict schema per
// group/version/kind.
func Convert(swagger []byte) (Result, error) {
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(swagger))
	dec.UseNumber() // keep integers such as format bounds exact
	if err := dec.Decode(&spec); err != nil {
		return Result{}, fmt.Errorf("decoding the OpenAPI spec: %w", err)
	}
	if len(spec.Definitions) == 0 {
		return Result{}, errors.New("the OpenAPI spec has no definitions")
	}
	defs := spec.Definitions
	for name, override := range typeOverrides {
		if d, ok := defs[name]; ok {
			o := deepCopy(override).(map[string]any)
			if desc, ok := d["description"]; ok {
				o["description"] = desc
			}
			defs[name] = o
		}
	}

	res := Result{Files: map[string][]byte{}}
	from := map[string]string{} // file name → definition, to catch two definitions on one name
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kinds, err := kindsOf(defs[name])
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		if len(kinds) == 0 {
			continue
		}
		expanded, err := inline(defs, defs[name], []string{name})
		if errors.Is(err, errCycle) {
			for _, k := range kinds {
				res.Skipped = append(res.Skipped, k.apiVersion()+" "+k.Kind)
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range kinds {
			file := k.fileName()
			if prev, dup := from[file]; dup && prev != name {
				return Result{}, fmt.Errorf("%s and %s both map to %s", prev, name, file)
			}
			from[file] = name
			s := deepCopy(expanded).(map[string]any)
			pinKind(s, k)
			strict(s)
			s["$schema"] = draft4
			b, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				return Result{}, fmt.Errorf("%s: encoding %s: %w", name, file, err)
			}
			res.Files[file] = append(b, '\n')
		}
	}
	if len(res.Files) == 0 {
		return Result{}, errors.New("no definition carries x-kubernetes-group-version-kind")
	}
	return res, nil
}

func kindsOf(def map[string]any) ([]gvk, error) {
	raw, ok := def["x-kubernetes-group-version-kind"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var kinds []gvk
	if err := json.Unmarshal(b, &kinds); err != nil {
		return nil, fmt.Errorf("x-kubernetes-group-version-kind: %w", err)
	}
	for _, k := range kinds {
		if k.Kind == "" || k.Version == "" {
			return nil, fmt.Errorf("x-kubernetes-group-version-kind entry %+v lacks kind or version", k)
		}
	}
	return kinds, nil
}

// inline returns a copy of v with every "$ref": "#/definitions/X" replaced by a
// copy of X (recursively). The referring object's other keys (a description)
// are kept beside the referenced schema's, which win. stack holds the
// definitions being expanded, to detect recursion.
func inline(defs map[string]map[string]any, v any, stack []string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if ref, ok := x["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, refPrefix)
			target, exists := defs[name]
			if !found || !exists {
				return nil, fmt.Errorf("unresolvable $ref %q", ref)
			}
			if slices.Contains(stack, name) {
				return nil, fmt.Errorf("%w: %s", errCycle, strings.Join(append(stack, name), " → "))
			}
			expanded, err := inline(defs, target, append(stack, name))
			if err != nil {
				return nil, err
			}
			for k, val := range x {
				if k != "$ref" {
					out[k] = deepCopy(val)
				}
			}
			for k, val := range expanded.(map[string]any) {
				if k == "description" && out[k] != nil {
					continue // the field's own description says more than the type's
				}
				out[k] = val
			}
			return out, nil
		}
		for k, val := range x {
			e, err := inline(defs, val, stack)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			e, err := inline(defs, val, stack)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	default:
		return v, nil
	}
}

// pinKind makes kind and apiVersion accept only this file's values, so that a
// manifest cannot be validated against another kind's schema by mistake.
func pinKind(s map[string]any, k gvk) {
	s["x-kubernetes-group-version-kind"] = []any{map[string]any{"group": k.Group, "version": k.Version, "kind": k.Kind}}
	props, _ := s["properties"].(map[string]any)
	if p, ok := props["kind"].(map[string]any); ok {
		p["enum"] = []any{k.Kind}
	}
	if p, ok := props["apiVersion"].(map[string]any); ok {
		p["enum"] = []any{k.apiVersion()}
	}
}

// strict walks a schema: every object that lists its properties gets
// additionalProperties false (so an unknown or misspelt field is an error, as
// kubectl's validation makes it), and every property the object does not
// require also accepts null (the API server treats null as "not set", and Helm
// renders empty values as null).
func strict(s map[string]any) {
	if props, ok := s["properties"].(map[string]any); ok {
		if _, set := s["additionalProperties"]; !set {
			s["additionalProperties"] = false
		}
		required := map[string]bool{}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if name, ok := r.(string); ok {
					required[name] = true
				}
			}
		}
		for name, p := range props {
			if p, ok := p.(map[string]any); ok && !required[name] {
				nullable(p)
			}
		}
	}
	for _, key := range []string{"properties", "patternProperties"} {
		if m, ok := s[key].(map[string]any); ok {
			for _, p := range m {
				if p, ok := p.(map[string]any); ok {
					strict(p)
				}
			}
		}
	}
	for _, key := range []string{"items", "additionalProperties", "not"} {
		if p, ok := s[key].(map[string]any); ok {
			strict(p)
		}
	}
	for _, key := range []string{"oneOf", "anyOf", "allOf"} {
		if l, ok := s[key].([]any); ok {
			for _, p := range l {
				if p, ok := p.(map[string]any); ok {
					strict(p)
				}
			}
		}
	}
}

// nullable lets a schema also accept null.
func nullable(p map[string]any) {
	switch t := p["type"].(type) {
	case string:
		if t != "null" {
			p["type"] = []any{t, "null"}
		}
		return
	case []any:
		if !slices.Contains(t, any("null")) {
			p["type"] = append(t, "null")
		}
		return
	}
	if alts, ok := p["oneOf"].([]any); ok {
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok && m["type"] == "null" {
				return
			}
		}
		p["oneOf"] = append(alts, map[string]any{"type": "null"})
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = deepCopy(val)
		}
		return out
	default:
		return v
	}
}
