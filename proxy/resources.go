package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/refusal"
)

// The resources stage keeps each vendor id with the end user and app it was
// created for: an id a response creates is bound to the call's consent before
// the app sees it, and a call that names an id is let through only for that end
// user and app.

var (
	// errResourceStore means a binding could not be read or written: fail closed.
	errResourceStore = errors.New("vendor resource bindings unavailable")
	// errResourceConflict means the vendor handed out an id already bound to
	// another end user or app: its answer is not passed on.
	errResourceConflict = errors.New("the vendor created an id bound to another end user or app")
)

// resourceRef is one place a request names a vendor id.
type resourceRef struct {
	where string // as declared: path:<name>, query:<name>, header:<name>, or a body path
	kind  string
	index int // path segment, for path:<name>
}

// compileResources reads the operation's declared references; placeholders
// become segment indexes.
func compileResources(op *configs.Operation) []resourceRef {
	segs := strings.Split(strings.Trim(op.Path, "/"), "/")
	var refs []resourceRef
	for where, kind := range op.Resources.References {
		ref := resourceRef{where: where, kind: kind, index: -1}
		if name, ok := strings.CutPrefix(where, "path:"); ok {
			for i, s := range segs {
				if s == "{"+name+"}" {
					ref.index = i
				}
			}
		}
		refs = append(refs, ref)
	}
	return refs
}

// referencedIDs returns the ids a request names, per reference.
func (req *appRequest) referencedIDs(ref resourceRef, escapedPath string) []string {
	switch {
	case ref.index >= 0:
		segs := strings.Split(strings.Trim(escapedPath, "/"), "/")
		if ref.index < len(segs) {
			if s, err := url.PathUnescape(segs[ref.index]); err == nil {
				return []string{s}
			}
		}
		return nil
	case strings.HasPrefix(ref.where, "query:"):
		return req.query[strings.TrimPrefix(ref.where, "query:")]
	case strings.HasPrefix(ref.where, "header:"):
		return req.header.Values(strings.TrimPrefix(ref.where, "header:"))
	case req.doc != nil:
		return scalarsAt(req.doc, ref.where)
	case req.form != nil:
		return req.form[ref.where]
	}
	var out []string
	for _, p := range req.parts {
		if p.name == ref.where {
			out = append(out, string(p.data))
		}
	}
	return out
}

// scalarsAt returns the strings and numbers found at a dotted path of a decoded
// JSON document.
func scalarsAt(doc any, path string) []string {
	out, _ := valuesAt(doc, path)
	return out
}

// valuesAt returns the strings and numbers at a dotted path, and whether
// anything else (an object, an array, a boolean) stands there instead: a
// reference that holds one cannot be checked.
func valuesAt(doc any, path string) (scalars []string, other bool) {
	walkPaths(doc, "", func(p string, v any) bool {
		if p != path {
			return true
		}
		if s, ok := minimise.ScalarString(v); ok {
			scalars = append(scalars, s)
		} else if v != nil {
			other = true
		}
		return false
	})
	return scalars, other
}

// walkPaths calls visit with every value of a decoded JSON document and its
// field path (array elements as "[]"), and descends into the values visit
// returns true for.
func walkPaths(v any, path string, visit func(path string, v any) bool) {
	if !visit(path, v) {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			walkPaths(el, minimise.JoinPath(path, k), visit)
		}
	case []any:
		for _, el := range x {
			walkPaths(el, path+"[]", visit)
		}
	}
}

// notYours is why a call may not use the ids it names. The audit record keeps
// the kind.
func notYours(status int, kind refusal.Kind, detail string) *refusal.Refusal {
	return refusal.New(status, kind, "Vendor resource not yours", detail).WithNote(string(kind))
}

// checkOwnership looks up every id the request names. The subject and app are
// the call's (its consent's subject, its certificate's app); an id bound to
// another, or never bound where the operation refuses unknown ids, is refused.
// It returns the ids named, by kind, for what the call creates (Resource.Refs).
func (g *Gateway) checkOwnership(ctx context.Context, v *vendor, op *operation, req *appRequest, escapedPath string, c *consentOf) (map[string]string, *refusal.Refusal) {
	named := map[string]string{}
	for _, ref := range op.refs {
		for _, id := range req.referencedIDs(ref, escapedPath) {
			named[ref.kind] = id
			res, err := g.consents.Resource(ctx, v.cfg.ID, ref.kind, id)
			switch {
			case errors.Is(err, consent.ErrNotFound):
				if op.cfg.Resources.Unknown == configs.UnknownAllow {
					continue
				}
				return nil, notYours(http.StatusForbidden, refusal.ResourceUnknown,
					fmt.Sprintf("the %s named by %s was not created through consentgate; the vendor was not called", ref.kind, ref.where))
			case err != nil:
				return nil, notYours(http.StatusServiceUnavailable, refusal.ConsentStore, "the vendor was not called")
			case c == nil || res.Subject != c.subject || res.App != c.app:
				return nil, notYours(http.StatusForbidden, refusal.ResourceNotOwned,
					fmt.Sprintf("the %s named by %s belongs to another end user or app; the vendor was not called", ref.kind, ref.where))
			}
		}
	}
	return named, nil
}

// consentOf is who a call is for: its consent's id and subject, and the app.
type consentOf struct {
	id, subject, app string
}

// bindCreated binds the ids a successful JSON response creates to the call's
// consent, before the app can learn them. An id that cannot be bound is not
// passed on: the app could never use it.
func (g *Gateway) bindCreated(ctx context.Context, ob *outbound, raw []byte) error {
	creates := ob.op.cfg.Resources.Creates
	if len(creates) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%w: %v", minimise.ErrUnparsable, err)
	}
	for path, kind := range creates {
		for _, id := range scalarsAt(doc, path) {
			// Only to the caller's own consent: on a report-only route the call
			// may have gone through under another app's or none.
			if ob.caller == nil {
				return fmt.Errorf("%w: operation %s created a %s without a consent of the app's to bind it to", errResourceStore, ob.op.cfg.ID, kind)
			}
			_, err := g.consents.BindResource(ctx, consent.Resource{Vendor: ob.vendor.cfg.ID, Kind: kind, ID: id,
				ConsentID: ob.caller.id, App: ob.caller.app, Refs: ob.named})
			switch {
			case errors.Is(err, consent.ErrResourceTaken):
				return fmt.Errorf("%w: a %s", errResourceConflict, kind)
			case err != nil:
				return fmt.Errorf("%w: binding a %s: %v", errResourceStore, kind, err)
			}
		}
	}
	return nil
}

// bindPassedThrough binds what a response passed on unminimised (report-only)
// creates: the body is read (bounded) and put back.
func (g *Gateway) bindPassedThrough(resp *http.Response, ob *outbound) error {
	if len(ob.op.cfg.Resources.Creates) == 0 || resp.StatusCode/100 != 2 || ob.op.cfg.Body == configs.BodyBinary {
		return nil
	}
	raw, err := readResponse(resp)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return g.bindCreated(resp.Request.Context(), ob, raw)
}

// callbackOwner finds whose a vendor's callback is: the binding of the ids it
// names, which must all be one end user's and the callback app's. The newest
// binding (an update rather than the user it is for) gives the consent. An id
// not bound yet is passed over when another is: a vendor may call back about
// an update before its creation's answer has reached consentgate.
func (g *Gateway) callbackOwner(ctx context.Context, cv *callbackVendor, body []byte) (*consent.Resource, *refusal.Refusal) {
	if len(cv.op.refs) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, notYours(http.StatusBadRequest, refusal.MalformedBody, "the callback body is not JSON")
	}
	var owner *consent.Resource
	for _, ref := range cv.op.refs {
		ids, other := valuesAt(doc, ref.where)
		if other {
			return nil, notYours(http.StatusBadRequest, refusal.MalformedBody, fmt.Sprintf("the callback's %s is not an id", ref.where))
		}
		for _, id := range ids {
			res, err := g.consents.Resource(ctx, cv.v.cfg.ID, ref.kind, id)
			switch {
			case errors.Is(err, consent.ErrNotFound):
				continue
			case err != nil:
				return nil, notYours(http.StatusServiceUnavailable, refusal.ConsentStore, "the callback was not forwarded; retry")
			case res.App != cv.cfg.App || (owner != nil && res.Subject != owner.Subject):
				return nil, notYours(http.StatusForbidden, refusal.ResourceNotOwned, "the callback names a resource of another app or end user")
			}
			if owner == nil || res.CreatedAt.After(owner.CreatedAt) {
				owner = &res
			}
		}
	}
	// A callback about nothing consentgate created (or about nothing at all)
	// has no owner to be forwarded to.
	if owner == nil && cv.op.cfg.Resources.Unknown != configs.UnknownAllow {
		return nil, notYours(http.StatusForbidden, refusal.ResourceUnknown, "the callback names no resource consentgate created")
	}
	return owner, nil
}

// ImportResource serves POST /v1/resources on the admin listener (admin role):
// it binds an id created at the vendor before consentgate was in place to a
// consent, so the consent's app can go on using it. The import is audited.
func (g *Gateway) ImportResource(w http.ResponseWriter, r *http.Request) {
	id, ref := identity.Require(r.Context(), identity.RoleAdmin)
	if ref != nil {
		ref.Write(w, "")
		return
	}
	var res consent.Resource
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "the body is {vendor, kind, id, consent_id}").Write(w, "")
		return
	}
	if v := g.vendorsNow()[res.Vendor]; v == nil || !v.creates(res.Kind) {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", fmt.Sprintf("no operation of vendor %q creates a %q", res.Vendor, res.Kind)).Write(w, "")
		return
	}
	res.Imported, res.Subject, res.App, res.CreatedAt = true, "", "", time.Time{}
	bound, err := g.consents.BindResource(r.Context(), res)
	switch {
	case errors.Is(err, consent.ErrNotFound):
		refusal.New(http.StatusNotFound, refusal.NotFound, "Not found", "no such consent").Write(w, "")
		return
	case errors.Is(err, consent.ErrResourceTaken):
		refusal.New(http.StatusConflict, refusal.ResourceNotOwned, "Bound to another", "the id is bound to another end user or app").Write(w, "")
		return
	case errors.Is(err, consent.ErrInvalid):
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", err.Error()).Write(w, "")
		return
	case err != nil:
		refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable", "").Write(w, "")
		return
	}
	if _, err := g.auditor.Append(r.Context(), audit.Record{Kind: audit.KindAdmin, App: id.Name, Vendor: bound.Vendor,
		ConsentID: bound.ConsentID, SubjectHMAC: bound.Subject,
		Detail: map[string]string{"action": "resource import", "role": id.Role, "kind": bound.Kind}}); err != nil {
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "the binding is stored but was not recorded").Write(w, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(bound)
}

// creates reports whether an operation of v creates ids of kind.
func (v *vendor) creates(kind string) bool {
	for _, op := range v.ops {
		for _, k := range op.cfg.Resources.Creates {
			if k == kind {
				return true
			}
		}
	}
	return false
}
