package proxy

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/consentgate/consentgate/configs"
)

// gatewayPrefix starts every gateway-mode URL: /v/<vendor>/<vendor path>.
const gatewayPrefix = "/v/"

// operation is a compiled operation path template.
type operation struct {
	cfg      *configs.Operation
	segments []string // literal segments, or "" for a placeholder
	trailing bool     // the template ends with a slash
	// searchable are the response paths whose values the audit record keeps
	// (hashed) so an auditor can search by them: national ids and document
	// numbers (configs.IdentifierField). identifierList, below, is wider.
	searchable map[string]bool
	// answers are the response paths of category verification: yes or no,
	// whatever the vendor puts there (a verify mode must not echo its record).
	answers map[string]bool
	// sent is everything the operation declares it sends (configs.Operation.SentFields);
	// declared is its names, sorted, for the policy input.
	sent     map[string]string
	declared []string
	// identifierList is what the policy input calls identifiers
	// (Operation.Identifiers: the searchable paths and those with a token
	// format), the fields tokenize:identifiers turns into tokens.
	identifierList []string
	// pathFields are the path placeholders the profile gives a category
	// (PathField name -> segment index); pathFieldNames their names, sorted.
	pathFields     map[string]int
	pathFieldNames []string
	// responseHeaders are the answer headers the profile lets through, by
	// canonical name (fields.response_headers).
	responseHeaders map[string]bool
	// refs are where a request names vendor ids (resources.go).
	refs []resourceRef
	// limits bound a JSON request body's structure (shape.go).
	limits shapeLimits
	// known are the names any profile uses (knownNames): the undeclared names
	// an audit record may name.
	known map[string]bool
}

func compileOperation(op *configs.Operation) *operation {
	p := strings.TrimPrefix(op.Path, "/")
	c := &operation{cfg: op, trailing: strings.HasSuffix(p, "/"), searchable: map[string]bool{}, sent: op.SentFields(), refs: compileResources(op)}
	c.declared = slices.Sorted(maps.Keys(c.sent))
	c.identifierList = op.Identifiers()
	c.responseHeaders = map[string]bool{}
	for name := range op.Fields.ResponseHeaders {
		c.responseHeaders[http.CanonicalHeaderKey(name)] = true
	}
	c.limits = compileLimits(op.Limits)
	for path, category := range op.Fields.Response {
		if configs.IdentifierField(path, category) {
			c.searchable[path] = true
		}
		if category == "verification" {
			if c.answers == nil {
				c.answers = map[string]bool{}
			}
			c.answers[path] = true
		}
	}
	for i, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			if _, declared := op.Fields.Path[strings.TrimSuffix(name, "}")]; declared {
				if c.pathFields == nil {
					c.pathFields = map[string]int{}
				}
				c.pathFields[configs.PathField(strings.TrimSuffix(name, "}"))] = i
			}
			seg = ""
		}
		c.segments = append(c.segments, seg)
	}
	c.pathFieldNames = slices.Sorted(maps.Keys(c.pathFields))
	return c
}

// route is where a request goes.
type route struct {
	vendor *vendor
	op     *operation
	// path is the vendor path, still escaped as the app sent it.
	path string
}

// splitGatewayPath splits /v/<vendor>/<rest> of an escaped path.
func splitGatewayPath(escaped string) (vendorID, rest string, ok bool) {
	tail, ok := strings.CutPrefix(escaped, gatewayPrefix)
	if !ok {
		return "", "", false
	}
	vendorID, rest, ok = strings.Cut(tail, "/")
	return vendorID, "/" + rest, ok && vendorID != ""
}

// match finds the operation of v for method and the escaped vendor path. Segments
// are compared unescaped; a segment that unescapes to a dot segment or contains a
// slash is refused, because the vendor would resolve it to another resource than
// the one the policy saw.
func (v *vendor) match(method, escaped string) (*operation, error) {
	p := strings.TrimPrefix(escaped, "/")
	trailing := strings.HasSuffix(p, "/")
	raw := strings.Split(strings.TrimSuffix(p, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPath, err)
		}
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\") {
			return nil, fmt.Errorf("%w: empty, dot or slash segment", ErrBadPath)
		}
		segs[i] = s
	}
	for _, op := range v.ops {
		if op.cfg.Callback {
			continue // vendors call it; apps cannot
		}
		if op.trailing != trailing || len(op.segments) != len(segs) || op.cfg.Method != method {
			continue
		}
		matched := true
		for i, s := range op.segments {
			if s != "" && s != segs[i] {
				matched = false
				break
			}
		}
		if matched {
			return op, nil
		}
	}
	return nil, ErrNoRoute
}

// methodsFor lists the methods v accepts on a path, for a helpful 404 detail.
func (v *vendor) methodsFor(escaped string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if _, err := v.match(m, escaped); err == nil {
			out = append(out, m)
		}
	}
	return out
}
