package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads a configuration file and the vendor profiles it lists from disk,
// then validates everything. The returned error lists every problem found, each
// naming file, line and field.
func Load(file string) (*Config, error) {
	return load(file, "")
}

// load reads file from disk; node, when not empty, replaces the file's node.
func load(file, node string) (*Config, error) {
	dir := filepath.Dir(file)
	return parse(filepath.Base(file), file, node, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	})
}

// LoadFS reads a configuration from fsys (for example the embedded FS).
func LoadFS(fsys fs.FS, name string) (*Config, error) {
	dir := path.Dir(name)
	return parse(path.Base(name), name, "", func(n string) ([]byte, error) {
		return fs.ReadFile(fsys, path.Join(dir, n))
	})
}

func parse(base, display, node string, read func(string) ([]byte, error)) (*Config, error) {
	data, err := read(base)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	var cfg Config
	idx, err := decode(display, data, &cfg)
	if err != nil {
		return nil, err
	}
	if node != "" {
		cfg.Node = node
	}
	cfg.File, cfg.idx = display, idx
	var errs Errors
	cfg.setDefaults()
	v := &validator{file: display, idx: idx}
	v.config(&cfg)
	errs = append(errs, v.errs...)

	seen := map[string]string{}
	for i, name := range cfg.VendorFiles {
		vdisplay := name
		if !filepath.IsAbs(name) {
			vdisplay = filepath.Join(filepath.Dir(display), name)
		}
		vdata, err := read(name)
		if err != nil {
			errs = append(errs, v.at(fmt.Sprintf("vendors[%d]", i), "cannot read vendor profile %s: %v", name, unwrapPath(err)))
			continue
		}
		var vendor Vendor
		vidx, err := decode(vdisplay, vdata, &vendor)
		if err != nil {
			errs = append(errs, asErrors(err)...)
			continue
		}
		vendor.File, vendor.idx = vdisplay, vidx
		vendor.setDefaults()
		vv := &validator{file: vdisplay, idx: vidx}
		vv.vendor(&vendor)
		errs = append(errs, vv.errs...)
		vendor.addErrorFields()
		if prev, dup := seen[vendor.ID]; dup && vendor.ID != "" {
			errs = append(errs, vv.at("id", "vendor id %q is also used by %s", vendor.ID, prev))
		}
		seen[vendor.ID] = vdisplay
		cfg.Vendors = append(cfg.Vendors, &vendor)
	}
	for _, vd := range cfg.Vendors {
		if vd.AuthorizationCode() != nil {
			v.errs = nil
			v.requireOAuth(&cfg, vd.ID)
			errs = append(errs, v.errs...)
			break
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// Vendor returns the loaded vendor profile with the given id, or nil.
func (c *Config) Vendor(id string) *Vendor {
	for _, v := range c.Vendors {
		if v.ID == id {
			return v
		}
	}
	return nil
}

// OperationFields are an operation's request and response field maps and its
// identifiers (nil for an operation no profile has): what a policy replay adds
// to a recorded input (policy.FieldMaps).
func (c *Config) OperationFields(vendor, operation string) (request, response map[string]string, identifiers []string) {
	return OperationFields(c.Vendors, vendor, operation)
}

// OperationFields is Config.OperationFields over a list of profiles.
func OperationFields(vendors []*Vendor, vendor, operation string) (request, response map[string]string, identifiers []string) {
	for _, v := range vendors {
		if v.ID != vendor {
			continue
		}
		for i := range v.Operations {
			if op := &v.Operations[i]; op.ID == operation {
				return op.SentFields(), op.Fields.Response, op.Identifiers()
			}
		}
	}
	return nil, nil, nil
}

// AuthorizationCode returns the vendor's oauth2_authorization_code credential,
// or nil.
func (v *Vendor) AuthorizationCode() *Credential {
	for i := range v.Credentials {
		if v.Credentials[i].Type == CredentialOAuth2AuthorizationCode {
			return &v.Credentials[i]
		}
	}
	return nil
}

// ResolvePath makes a data file path absolute against DataDir.
func (c *Config) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// unwrapPath drops the path from an fs error: the caller already names it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// index maps a field path (operations[1].method) to its line in the file.
type index map[string]int

// line returns the line of field, or of its nearest parent that has one.
func (idx index) line(field string) int {
	for f := field; f != ""; {
		if l, ok := idx[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 1
}

// field returns the deepest field path on a line, for decode errors that only
// know the line.
func (idx index) field(line int) string {
	best := ""
	for f, l := range idx {
		if l == line && len(f) > len(best) {
			best = f
		}
	}
	return best
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decode parses data strictly into out: unknown keys and type errors become
// FieldErrors with file, line and field.
func decode(file string, data []byte, out any) (index, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(file, err)}
	}
	if len(root.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "file is empty"}}
	}
	doc := root.Content[0]
	idx := index{}
	indexNode(doc, "", idx)
	var errs Errors
	checkKeys(file, doc, "", reflect.TypeOf(out).Elem(), &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	if err := doc.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				errs = append(errs, lineError(file, idx, msg))
			}
		} else {
			errs = append(errs, lineError(file, idx, err.Error()))
		}
		return nil, errs
	}
	return idx, nil
}

func syntaxError(file string, err error) *FieldError {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FieldError{File: file, Line: n, Msg: m[2]}
	}
	return &FieldError{File: file, Line: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func lineError(file string, idx index, msg string) *FieldError {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FieldError{File: file, Line: n, Field: idx.field(n), Msg: m[2]}
	}
	return &FieldError{File: file, Line: 1, Msg: msg}
}

func indexNode(n *yaml.Node, prefix string, idx index) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			idx[p] = k.Line
			indexNode(v, p, idx)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			idx[p] = c.Line
			indexNode(c, p, idx)
		}
	}
}

// checkKeys walks the YAML tree beside the Go type and reports keys the type does
// not have: a misspelt key silently ignored is how a control gets switched off.
func checkKeys(file string, n *yaml.Node, prefix string, t reflect.Type, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinField(prefix, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, &FieldError{File: file, Line: k.Line, Field: p,
					Msg: "unknown field (known: " + strings.Join(slices.Sorted(maps.Keys(fields)), ", ") + ")"})
				continue
			}
			checkKeys(file, v, p, ft, errs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(file, n.Content[i+1], joinField(prefix, n.Content[i].Value), t.Elem(), errs)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			checkKeys(file, c, fmt.Sprintf("%s[%d]", prefix, i), t.Elem(), errs)
		}
	}
}

func joinField(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// FieldError is one configuration problem, located in its file.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Errors is every problem found in one load, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func asErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return Errors{{Msg: err.Error()}}
}
