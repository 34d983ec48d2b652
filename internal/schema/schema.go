package schema

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/consentgate/consentgate/configs"
)

// Files are the schemas this package generates, by file name under docs/schema.
var Files = map[string]any{
	"consentgate.schema.json": &configs.Config{},
	"vendor.schema.json":      &configs.Vendor{},
}

// Generate is the schema of v (a *configs.Config or *configs.Vendor), with the
// Go doc comments of configs as descriptions. dir is the configs folder, read
// for its comments.
func Generate(v any, dir string) ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag: "yaml",
		// Every key has a default or is checked by configs' validation, which
		// names file, line and field: the schema requires none, and refuses
		// unknown keys as Load does.
		RequiredFromJSONSchemaTags: true,
		Mapper:                     mapType,
	}
	if err := addComments(r, dir); err != nil {
		return nil, err
	}
	s := r.Reflect(v)
	s.ID = jsonschema.ID("https://consentgate.dev/schema/" + name(v))
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func name(v any) string {
	for n, w := range Files {
		if reflect.TypeOf(w) == reflect.TypeOf(v) {
			return n
		}
	}
	return reflect.TypeOf(v).Elem().Name()
}

// mapType gives the types configs decodes itself their YAML form.
func mapType(t reflect.Type) *jsonschema.Schema {
	if t == reflect.TypeFor[configs.Duration]() {
		return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
			Description: "a Go duration such as 5s, 250ms or 1h30m"}
	}
	return nil
}

// addComments reads the doc comments of the configs package in dir (a path
// relative to the working directory) under the package's import path, which
// is what the reflector looks them up by.
func addComments(r *jsonschema.Reflector, dir string) error {
	found := map[string]string{}
	if err := (&jsonschema.Reflector{CommentMap: found}).AddGoComments("", dir); err != nil {
		return fmt.Errorf("reading the comments of %s: %w", dir, err)
	}
	r.CommentMap = map[string]string{}
	prefix := path.Clean(filepath.ToSlash(dir)) + "."
	for k, v := range found {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			r.CommentMap["github.com/consentgate/consentgate/configs."+rest] = v
		}
	}
	if len(r.CommentMap) == 0 {
		return fmt.Errorf("no doc comments found in %s", dir)
	}
	return nil
}
