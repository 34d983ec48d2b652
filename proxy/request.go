package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

// The request stage reads what an app asks to send as the operation declares it,
// never as the app labels it: the body by the operation's media type, the query
// and the headers by name. Every field found is named for the policy and the
// audit record; only declared fields the decision permits are sent on.

// requestRefused is why a request cannot be read: the app's answer, and
// nothing was sent.
func requestRefused(status int, kind refusal.Kind, format string, args ...any) *refusal.Refusal {
	return refusal.New(status, kind, requestTitle(kind), fmt.Sprintf(format, args...))
}

func requestTitle(kind refusal.Kind) string {
	switch kind {
	case refusal.MediaType:
		return "Unsupported media type"
	case refusal.Encoding:
		return "Unsupported content coding"
	case refusal.MalformedBody:
		return "Malformed request body"
	case refusal.MalformedQuery:
		return "Malformed query"
	case refusal.UndeclaredField:
		return "Undeclared request field"
	case refusal.TooLarge:
		return "Request body too large"
	case refusal.TooComplex:
		return "Request body too complex"
	case refusal.GatewayBusy:
		return "Gateway busy"
	}
	return "Bad request"
}

// appRequest is an app's request read as its operation declares it.
type appRequest struct {
	op    *operation
	json  []byte // the JSON body (RequestJSON), validated
	doc   any    // the same, decoded, for identifier values
	form  url.Values
	parts []formPart
	query url.Values
	// header holds the app headers that could carry data: neither framing,
	// nor consentgate's own, nor a credential.
	header http.Header
	// raw is every field found, named as in configs.Operation.SentFields;
	// present is the same with undeclared names that could carry a value
	// (digits, an address) redacted, for the policy and the audit record.
	raw, present []string
}

type formPart struct {
	name, filename, contentType string
	data                        []byte
}

// protocolHeaders are the app's headers consentgate reads or replaces itself:
// they are not passed on and not reported as withheld data.
var protocolHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Host": true, "Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Proxy-Connection": true, "Accept": true, "Accept-Encoding": true, "Expect": true}

// readRequest reads the body (bounded), undoes its content coding and parses it
// as op's media type; it also reads the query and the headers that carry data.
// Parsing waits for a slot (parseSlots): one app's large bodies do not starve
// the others' calls.
func (g *Gateway) readRequest(ctx context.Context, r *http.Request, v *vendor, op *operation) (*appRequest, error) {
	id, _ := identity.From(ctx)
	release, ok := g.parsing.acquire(ctx, id.Name)
	if !ok {
		return nil, requestRefused(http.StatusServiceUnavailable, refusal.GatewayBusy, "too many request bodies are being read for this app; retry")
	}
	defer release()
	return readRequest(r, v, op)
}

func readRequest(r *http.Request, v *vendor, op *operation) (*appRequest, error) {
	raw, err := readBody(r, op.cfg.MaxRequestBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, requestRefused(http.StatusRequestEntityTooLarge, refusal.TooLarge, "operation %s accepts at most %d bytes", op.cfg.ID, op.cfg.MaxRequestBytes)
		}
		return nil, requestRefused(http.StatusBadRequest, refusal.BadRequest, "the request body could not be read")
	}
	req := &appRequest{op: op}
	if len(raw) > 0 {
		body, err := decodeContent(r.Header.Values("Content-Encoding"), raw, op.cfg.MaxRequestBytes)
		if err != nil {
			return nil, err
		}
		if err := req.parseBody(r.Header.Values("Content-Type"), body); err != nil {
			return nil, err
		}
	}
	if req.query, err = url.ParseQuery(r.URL.RawQuery); err != nil {
		return nil, requestRefused(http.StatusBadRequest, refusal.MalformedQuery, "the query string does not parse: %v", err)
	}
	req.header = http.Header{}
	for name, vals := range r.Header {
		if protocolHeaders[name] || slices.ContainsFunc(v.strip.headers, func(h string) bool { return strings.EqualFold(h, name) }) {
			continue
		}
		req.header[name] = vals
	}
	req.raw = req.fields()
	for _, f := range req.raw {
		req.present = append(req.present, req.name(f))
	}
	req.present = slices.Compact(slices.Sorted(slices.Values(req.present)))
	if op.cfg.Undeclared == configs.UndeclaredRefuse {
		if extra := req.undeclared(); len(extra) > 0 {
			return nil, requestRefused(http.StatusBadRequest, refusal.UndeclaredField, "operation %s does not take %s", op.cfg.ID, strings.Join(extra, ", "))
		}
	}
	return req, nil
}

// decodeContent undoes at most one gzip or deflate coding, bounded by limit.
func decodeContent(codings []string, body []byte, limit int64) ([]byte, error) {
	var list []string
	for _, c := range codings {
		for _, one := range strings.Split(c, ",") {
			if one = strings.ToLower(strings.TrimSpace(one)); one != "" && one != "identity" {
				list = append(list, one)
			}
		}
	}
	if len(list) == 0 {
		return body, nil
	}
	if len(list) > 1 {
		return nil, requestRefused(http.StatusUnsupportedMediaType, refusal.Encoding, "one content coding at most (gzip or deflate), not %s", strings.Join(list, ", "))
	}
	var rd io.Reader
	var err error
	switch list[0] {
	case "gzip", "x-gzip":
		rd, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		// RFC 9110 deflate is zlib-wrapped; some clients send it raw.
		if rd, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
			rd, err = flate.NewReader(bytes.NewReader(body)), nil
		}
	default:
		return nil, requestRefused(http.StatusUnsupportedMediaType, refusal.Encoding, "content coding %q cannot be read; use gzip, deflate or none", list[0])
	}
	if err != nil {
		return nil, requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the %s body does not decode", list[0])
	}
	out, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the %s body does not decode", list[0])
	}
	if int64(len(out)) > limit {
		return nil, requestRefused(http.StatusRequestEntityTooLarge, refusal.TooLarge, "the decoded body is larger than %d bytes", limit)
	}
	return out, nil
}

// parseBody reads a non-empty body as the operation's media type. The app's
// Content-Type must say the same (RFC 9110 matching: case, parameters, +json).
func (req *appRequest) parseBody(contentTypes []string, body []byte) error {
	want := req.op.cfg.RequestBody
	if want == configs.RequestNone {
		return requestRefused(http.StatusUnsupportedMediaType, refusal.MediaType, "operation %s takes no request body", req.op.cfg.ID)
	}
	if len(contentTypes) != 1 {
		return requestRefused(http.StatusUnsupportedMediaType, refusal.MediaType, "a request body needs exactly one Content-Type (%s)", mediaName(want))
	}
	mt, params, err := mime.ParseMediaType(contentTypes[0])
	if err != nil {
		return requestRefused(http.StatusUnsupportedMediaType, refusal.MediaType, "the Content-Type does not parse")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return requestRefused(http.StatusUnsupportedMediaType, refusal.MediaType, "charset %q is not read; send UTF-8", cs)
	}
	if !mediaMatches(want, mt) {
		return requestRefused(http.StatusUnsupportedMediaType, refusal.MediaType, "operation %s takes %s, not %s", req.op.cfg.ID, mediaName(want), mt)
	}
	switch want {
	case configs.RequestJSON:
		return req.parseJSON(body)
	case configs.RequestForm:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the form body does not parse: %v", err)
		}
		req.form = form
		return nil
	default:
		return req.parseMultipart(params["boundary"], body)
	}
}

func mediaName(kind string) string {
	switch kind {
	case configs.RequestJSON:
		return "application/json"
	case configs.RequestForm:
		return "application/x-www-form-urlencoded"
	case configs.RequestMultipart:
		return "multipart/form-data"
	}
	return "no body"
}

// mediaMatches compares a lower-cased media type (mime.ParseMediaType) with
// the declared kind.
func mediaMatches(kind, mt string) bool {
	switch kind {
	case configs.RequestJSON:
		return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
	case configs.RequestForm:
		return mt == "application/x-www-form-urlencoded"
	case configs.RequestMultipart:
		return mt == "multipart/form-data"
	}
	return false
}

func (req *appRequest) parseJSON(body []byte) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil
	}
	if !json.Valid(b) || b[0] != '{' {
		return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the request body is not a JSON object")
	}
	// Shape first, in one linear pass: what follows walks the tree, and a body
	// nested thousands deep would cost quadratic time there.
	if err := checkShape(b, req.op.limits); err != nil {
		return requestRefused(http.StatusBadRequest, refusal.TooComplex, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&req.doc); err != nil {
		return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the request body is not a JSON object")
	}
	req.json = b
	return nil
}

// maxParts bounds the parts of a multipart body.
const maxParts = 256

func (req *appRequest) parseMultipart(boundary string, body []byte) error {
	if boundary == "" {
		return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "a multipart body needs a boundary parameter")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the multipart body does not parse")
		}
		if len(req.parts) == maxParts {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "a multipart body has at most %d parts", maxParts)
		}
		disp, dparams, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || dparams["name"] == "" {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "every part needs Content-Disposition: form-data with a name")
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the multipart body does not parse")
		}
		part := formPart{name: dparams["name"], filename: dparams["filename"], data: data}
		if ct := p.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err == nil {
				part.contentType = mt
			}
		}
		req.parts = append(req.parts, part)
	}
}

// fields names every field the request carries, sorted.
func (req *appRequest) fields() []string {
	set := map[string]bool{}
	if req.doc != nil {
		presentFields(req.doc, "", set)
		for name := range set {
			if reservedName(name) {
				delete(set, name)
				set[bodyPrefix+name] = true
			}
		}
	}
	for name := range req.form {
		set[bodyName(name)] = true
	}
	for _, p := range req.parts {
		set[bodyName(p.name)] = true
	}
	for name := range req.query {
		set[configs.QueryField(name)] = true
	}
	for name := range req.header {
		set[configs.HeaderField(name)] = true
	}
	return sortedKeys(set)
}

// reservedName says whether a body field's name is spelled as a field of
// another place (query:lang, header:x-note, path:iin): it is never that field,
// and never declared.
func reservedName(name string) bool {
	return strings.HasPrefix(name, "query:") || strings.HasPrefix(name, "header:") || strings.HasPrefix(name, "path:")
}

// bodyPrefix marks a body field with a reserved name among the request's fields,
// where no profile can declare it.
const bodyPrefix = "body:"

func bodyName(name string) string {
	if reservedName(name) {
		return bodyPrefix + name
	}
	return name
}

func (req *appRequest) undeclared() []string {
	var out []string
	for _, f := range req.present {
		if _, ok := req.op.sent[f]; !ok {
			out = append(out, f)
		}
	}
	return out
}

// name is how a field is recorded: as declared, or with every part that is
// not a name some profile knows (or, for headers, a standard HTTP header)
// redacted. An app could otherwise put a birth number or a person's name in a
// header name, a query parameter or a JSON key, and have it written to the
// audit log: "X-850-101-123-4", "?novak=1", {"JanNovak": 1}.
func (req *appRequest) name(f string) string {
	if _, ok := req.op.sent[f]; ok {
		return f
	}
	if p, r, ok := strings.Cut(f, ":"); ok && (p == "query" || p == "header") {
		if req.op.known[r] || (p == "header" && standardHeaders[r]) {
			return f
		}
		return p + ":" + redactedName
	}
	segs := strings.Split(f, ".")
	for i, s := range segs {
		if !req.op.known[strings.TrimSuffix(s, "[]")] {
			segs[i] = redactedName
		}
	}
	return strings.Join(segs, ".")
}

const redactedName = "(redacted)"

// standardHeaders are request headers browsers and HTTP clients send on their
// own, by their lower-case names: worth naming when withheld, and no one's data
// by their name.
var standardHeaders = map[string]bool{"user-agent": true, "referer": true, "origin": true, "accept-language": true,
	"accept-charset": true, "dnt": true, "cache-control": true, "pragma": true, "if-match": true, "if-none-match": true,
	"if-modified-since": true, "if-unmodified-since": true, "x-request-id": true, "x-correlation-id": true,
	"sec-fetch-site": true, "sec-fetch-mode": true, "sec-fetch-dest": true, "sec-fetch-user": true, "sec-ch-ua": true,
	"sec-ch-ua-mobile": true, "sec-ch-ua-platform": true, "upgrade-insecure-requests": true, "priority": true, "save-data": true}

// knownNames are the names the profiles use: every segment of a declared body
// or response path and every declared query parameter and header (lower case).
func knownNames(vendors map[string]*vendor) map[string]bool {
	known := map[string]bool{}
	for _, v := range vendors {
		for _, op := range v.ops {
			for _, fields := range []map[string]string{op.sent, op.cfg.Fields.Response} {
				for f := range fields {
					if _, name, ok := strings.Cut(f, ":"); ok {
						known[name] = true
						continue
					}
					for _, seg := range strings.Split(f, ".") {
						known[strings.TrimSuffix(seg, "[]")] = true
					}
				}
			}
		}
	}
	return known
}

// sentRequest is what goes to the vendor: the minimised body with its media
// type, query and headers, and what was disclosed and withheld.
type sentRequest struct {
	// path is the vendor path, escaped (route.path, tokens revealed).
	path        string
	body        []byte
	contentType string
	query       url.Values
	header      http.Header
	disclosed   []string
	withheld    []string
	// identifiers are the raw values of disclosed identifier fields; the caller
	// hashes them at once.
	identifiers []string
}

// minimize keeps the fields that are declared and not in drop (the decision's
// request.drop; nil on a report-only pass-through). Nothing undeclared is sent.
func (req *appRequest) minimize(drop []string) (*sentRequest, error) {
	dropped := map[string]bool{}
	for _, p := range drop {
		dropped[p] = true
	}
	out := &sentRequest{query: url.Values{}, header: http.Header{}}
	keep := map[string]bool{}
	disclosed, withheld := map[string]bool{}, map[string]bool{}
	for _, f := range req.raw {
		if _, declared := req.op.sent[f]; declared && !dropped[f] {
			keep[f] = true
			disclosed[f] = true
		} else {
			withheld[req.name(f)] = true
		}
	}
	req.keepRequired(keep, disclosed, withheld)
	if err := req.minimizeBody(out, keep, disclosed, withheld); err != nil {
		return nil, err
	}
	out.disclosed, out.withheld = sortedKeys(disclosed), sortedKeys(withheld)
	for name, vals := range req.query {
		if f := configs.QueryField(name); keep[f] {
			out.query[name] = vals
			out.identify(f, req.op.sent[f], vals)
		}
	}
	for name, vals := range req.header {
		if f := configs.HeaderField(name); keep[f] {
			out.header[name] = vals
			out.identify(f, req.op.sent[f], vals)
		}
	}
	return out, nil
}

// keepRequired withholds a field the profile sends only with others
// (requires:) when one of those is not kept, until none is left so: a field
// whose precondition minimisation removed would make a request the vendor
// forbids.
func (req *appRequest) keepRequired(keep, disclosed, withheld map[string]bool) {
	for changed := true; changed; {
		changed = false
		for dep, needs := range req.op.cfg.Requires {
			if keep[dep] && slices.ContainsFunc(needs, func(n string) bool { return !keep[n] }) {
				delete(keep, dep)
				delete(disclosed, dep)
				withheld[req.name(dep)] = true
				changed = true
			}
		}
	}
}

func (out *sentRequest) identify(path, category string, vals []string) {
	if configs.IdentifierField(path, category) {
		for _, v := range vals {
			if v != "" {
				out.identifiers = append(out.identifiers, v)
			}
		}
	}
}

// minimizeBody writes the kept body fields. A JSON body's own walk says what it
// disclosed and withheld: it withholds more than keep (keys that read as paths).
func (req *appRequest) minimizeBody(out *sentRequest, keep, disclosed, withheld map[string]bool) error {
	switch {
	case req.json != nil:
		fields := map[string]string{}
		for f := range keep {
			if !reservedName(f) {
				fields[f] = minimise.ActionKeepScalar
				delete(disclosed, f)
			}
		}
		m, err := minimise.New(fields, policy.ActionDrop, nil, time.Time{}).Minimise(req.json)
		if err != nil {
			return requestRefused(http.StatusBadRequest, refusal.MalformedBody, "the request body cannot be minimised: %v", err)
		}
		for _, f := range m.Disclosed {
			disclosed[f] = true
		}
		for _, f := range m.Withheld {
			withheld[req.name(f)] = true
		}
		out.body, out.contentType = m.Body, "application/json"
		out.identifiers = append(out.identifiers, identifierValues(req.doc, keptFields(req.op.sent, keep))...)
	case req.form != nil:
		kept := url.Values{}
		for name, vals := range req.form {
			if !reservedName(name) && keep[name] {
				kept[name] = vals
				out.identify(name, req.op.sent[name], vals)
			}
		}
		out.body, out.contentType = []byte(kept.Encode()), "application/x-www-form-urlencoded"
	case req.parts != nil:
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, p := range req.parts {
			if reservedName(p.name) || !keep[p.name] {
				continue
			}
			if err := writePart(mw, p); err != nil {
				return err
			}
			out.identify(p.name, req.op.sent[p.name], []string{string(p.data)})
		}
		if err := mw.Close(); err != nil {
			return err
		}
		out.body, out.contentType = b.Bytes(), mw.FormDataContentType()
	}
	return nil
}

// writePart writes a kept part with only its name, a file name that says
// nothing (an app's may name the person) and its bare media type.
func writePart(mw *multipart.Writer, p formPart) error {
	params := map[string]string{"name": p.name}
	if p.filename != "" {
		params["filename"] = p.name
	}
	h := textproto.MIMEHeader{"Content-Disposition": {mime.FormatMediaType("form-data", params)}}
	if p.contentType != "" {
		h.Set("Content-Type", p.contentType)
	}
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = w.Write(p.data)
	return err
}

// keptFields is fields limited to the kept paths.
func keptFields(fields map[string]string, keep map[string]bool) map[string]string {
	out := map[string]string{}
	for p := range keep {
		if c, ok := fields[p]; ok {
			out[p] = c
		}
	}
	return out
}

// presentFields lists the leaf paths of a JSON document, for the policy input:
// every scalar's path, and an empty array's as path[].
func presentFields(v any, path string, out map[string]bool) {
	walkPaths(v, path, func(p string, v any) bool {
		switch x := v.(type) {
		case map[string]any:
		case []any:
			if len(x) == 0 && p != "" {
				out[p+"[]"] = true
			}
		default:
			if p != "" {
				out[p] = true
			}
		}
		return true
	})
}

// withPath takes the vendor path along. A placeholder the profile gives a
// category is a field like any other, except that the call cannot go without
// it: where the decision withholds one, the call is refused.
func (s *sentRequest) withPath(rt *route, drop []string) *refusal.Refusal {
	s.path = rt.path
	if len(rt.op.pathFields) == 0 {
		return nil
	}
	segs := strings.Split(strings.Trim(rt.path, "/"), "/")
	for _, field := range rt.op.pathFieldNames {
		if slices.Contains(drop, field) {
			return refusal.New(http.StatusForbidden, refusal.PathFieldWithheld, "Path field withheld",
				fmt.Sprintf("the decision withholds %s, and operation %s cannot be called without it; the vendor was not called", field, rt.op.cfg.ID))
		}
		s.disclosed = append(s.disclosed, field)
		if i := rt.op.pathFields[field]; i < len(segs) {
			if v, err := url.PathUnescape(segs[i]); err == nil {
				s.identify(field, rt.op.sent[field], []string{v})
			}
		}
	}
	slices.Sort(s.disclosed)
	return nil
}
