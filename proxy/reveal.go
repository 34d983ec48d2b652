package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/tokens"
)

// opaqueShape tells an opaque token (tokens.Format's default) from a value.
var opaqueShape = tokens.Format{Kind: tokens.KindOpaque}

// reveal puts values in place of the tokens the app sent in the operation's
// reveals fields. A token of the end user's and app's, of the field's
// category, in a field the decision reveals, becomes its value; any other
// token stops the call (403), so a vendor never gets what it was not meant
// to. A value that is no token goes as it is, unless it has a token's shape.
func (g *Gateway) reveal(c *call) *refusal.Refusal {
	op := c.rt.op.cfg
	if len(op.Reveals) == 0 || g.tokens == nil || c.caller == nil {
		return nil
	}
	allowed := c.decision.Request.Reveal
	fn := func(field, value string) (string, error) {
		got, b, err := g.tokens.Reveal(c.ctx, value, c.caller.subject, c.caller.app)
		switch {
		case errors.Is(err, tokens.ErrUnknown) && !opaqueShape.IsOpaque(value):
			return value, nil
		case errors.Is(err, tokens.ErrUnknown), errors.Is(err, tokens.ErrNotYours), errors.Is(err, tokens.ErrShredded):
			return "", errNotRevealable{field, "it is not a token of this end user and app that can still be revealed"}
		case err != nil:
			return "", fmt.Errorf("%w: %w", errTokenVault, err)
		case b.Category != c.rt.op.sent[field]:
			return "", errNotRevealable{field, "the token is of another data category"}
		case !slices.Contains(allowed, field):
			return "", errNotRevealable{field, "the purpose does not reveal it to this vendor"}
		}
		c.ex.revealed = append(c.ex.revealed, field+"="+g.tokens.ID(value))
		c.revealed = append(c.revealed, got)
		// The audit record is searchable by the value that went, not the token.
		c.sent.identifiers = slices.DeleteFunc(c.sent.identifiers, func(s string) bool { return s == value })
		if configs.IdentifierField(field, b.Category) {
			c.sent.identifiers = append(c.sent.identifiers, got)
		}
		return got, nil
	}
	if err := c.sent.replace(c.rt.op, fn); err != nil {
		var nr errNotRevealable
		if errors.As(err, &nr) {
			return refusal.New(http.StatusForbidden, refusal.TokenNotRevealable, "Token not revealable",
				fmt.Sprintf("%s: %s; the vendor was not called", nr.field, nr.why))
		}
		g.log.Error("token vault unavailable: refusing the call", logRequestID, c.ex.requestID, logError, err.Error())
		return refusal.New(http.StatusServiceUnavailable, refusal.TokenVault, "Token vault unavailable",
			"the tokens in the request could not be looked up; the vendor was not called").AsFailure(err.Error())
	}
	return nil
}

type errNotRevealable struct{ field, why string }

func (e errNotRevealable) Error() string { return e.field + ": " + e.why }

// replace runs fn on every value the request sends in a reveals field, and
// puts what it returns in its place.
func (s *sentRequest) replace(op *operation, fn func(field, value string) (string, error)) error {
	for _, field := range op.cfg.Reveals {
		var err error
		switch {
		case strings.HasPrefix(field, "path:"):
			if i, ok := op.pathFields[field]; ok { // the profile's check makes it so
				err = s.replacePath(i, field, fn)
			}
		case strings.HasPrefix(field, "query:"):
			err = replaceValues(s.query, strings.TrimPrefix(field, "query:"), field, fn)
		case strings.HasPrefix(field, "header:"):
			err = replaceValues(url.Values(s.header), http.CanonicalHeaderKey(strings.TrimPrefix(field, "header:")), field, fn)
		case s.contentType == "application/x-www-form-urlencoded":
			err = s.replaceForm(field, fn)
		case s.contentType == "application/json":
			err = s.replaceJSON(field, fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// replacePath replaces the path segment at index i; the value goes escaped,
// so a slash in it (a birth number's) stays in its segment.
func (s *sentRequest) replacePath(i int, field string, fn func(field, value string) (string, error)) error {
	segs := strings.Split(strings.TrimPrefix(s.path, "/"), "/")
	if i >= len(segs) {
		return nil
	}
	v, err := url.PathUnescape(segs[i])
	if err != nil {
		return nil // the route matched unescaped segments only
	}
	got, err := fn(field, v)
	if err != nil || got == v {
		return err
	}
	// The route refuses such a segment from an app: the vendor, or a proxy
	// before it, could read it as another path.
	if got == "" || got == "." || got == ".." || strings.ContainsAny(got, "/\\") {
		return errNotRevealable{field, "its value cannot stand in a path segment"}
	}
	segs[i] = url.PathEscape(got)
	s.path = "/" + strings.Join(segs, "/")
	return nil
}

func replaceValues(vals url.Values, name, field string, fn func(field, value string) (string, error)) error {
	for i, v := range vals[name] {
		got, err := fn(field, v)
		if err != nil {
			return err
		}
		vals[name][i] = got
	}
	return nil
}

func (s *sentRequest) replaceForm(field string, fn func(field, value string) (string, error)) error {
	form, err := url.ParseQuery(string(s.body))
	if err != nil || len(form[field]) == 0 {
		return nil
	}
	if err := replaceValues(form, field, field, fn); err != nil {
		return err
	}
	s.body = []byte(form.Encode())
	return nil
}

// replaceJSON rewrites the body only when the field is in it; numbers keep
// their digits (UseNumber).
func (s *sentRequest) replaceJSON(field string, fn func(field, value string) (string, error)) error {
	if len(s.body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil
	}
	changed := false
	doc, err := replaceAt(doc, strings.Split(field, "."), field, fn, &changed)
	if err != nil || !changed {
		return err
	}
	s.body, err = json.Marshal(doc)
	return err
}

// replaceAt walks segs ("name" or "name[]") and replaces the strings there.
func replaceAt(v any, segs []string, field string, fn func(field, value string) (string, error), changed *bool) (any, error) {
	if len(segs) == 0 {
		switch leaf := v.(type) {
		case string:
			got, err := fn(field, leaf)
			*changed = *changed || got != leaf
			return got, err
		case json.Number:
			// A token of digits sent as a number is a token all the same.
			got, err := fn(field, leaf.String())
			if err != nil || got == leaf.String() {
				return v, err
			}
			*changed = true
			if _, perr := strconv.ParseFloat(got, 64); perr == nil && !strings.ContainsAny(got, " /+-eE.") {
				return json.Number(got), nil
			}
			return got, nil
		}
		return v, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return v, nil
	}
	key, array := strings.CutSuffix(segs[0], "[]")
	child, ok := obj[key]
	if !ok {
		return v, nil
	}
	var err error
	if list, isList := child.([]any); array && isList {
		for i := range list {
			if list[i], err = replaceAt(list[i], segs[1:], field, fn, changed); err != nil {
				return v, err
			}
		}
		return v, nil
	}
	obj[key], err = replaceAt(child, segs[1:], field, fn, changed)
	return v, err
}
