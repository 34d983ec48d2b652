package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/tokens"
	"go.opentelemetry.io/otel/attribute"
)

// maxResponseBytes bounds a JSON response held for minimisation.
const maxResponseBytes = 16 << 20

// readResponse reads a vendor's body whole, up to maxResponseBytes, and closes it.
func readResponse(resp *http.Response) ([]byte, error) {
	raw, err := readAllSized(io.LimitReader(resp.Body, maxResponseBytes+1), resp.ContentLength, maxResponseBytes+1)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading vendor response: %w", err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", minimise.ErrUnparsable, maxResponseBytes)
	}
	return raw, nil
}

// readAllSized is io.ReadAll that allocates once when the length is announced
// (up to limit): a stated length is a hint only, the reader decides the end.
func readAllSized(r io.Reader, length, limit int64) ([]byte, error) {
	if length <= 0 || length > limit {
		return io.ReadAll(r)
	}
	var b bytes.Buffer
	b.Grow(int(length) + bytes.MinRead)
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// modifyResponse runs before any byte reaches the app.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	ob := resp.Request.Context().Value(outboundKey{}).(*outbound)
	g.metrics.observe(stageUpstream, ob.sent)
	ob.vendor.quota.observe(resp.Header, resp.StatusCode, g.now())
	if rem, known := ob.vendor.quota.snapshot(); known {
		g.metrics.quotaRemaining.WithLabelValues(ob.vendor.cfg.ID).Set(float64(rem))
	}
	ob.ex.upstreamStatus, ob.ex.status = resp.StatusCode, resp.StatusCode
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return fmt.Errorf("%w: %q", ErrUnexpectedEncoding, enc)
	}
	// Vendor session cookies belong to consentgate's connection, and the
	// vendor's own headers to no one the policy named.
	if n := minimiseResponseHeaders(resp.Header, ob.op); n > 0 {
		ob.ex.responseHeadersWithheld = n
	}
	ob.scrub.header(resp.Header)
	// What of the app's request data never reached the vendor: the vendor's
	// answer is about the rest (a verify mode's "verified" above all). Headers
	// are not counted: every client sends some nobody declares (User-Agent).
	resp.Header.Set("X-Consentgate-Request-Withheld", strconv.Itoa(countData(ob.ex.requestWithheld)))
	if ob.passthrough || ob.op.cfg.Body == configs.BodyBinary {
		return g.passThrough(resp, ob)
	}
	return g.minimiseResponse(resp, ob)
}

// passThrough sends a binary body, or a report-only call's, as it is (scrubbed
// of injected secrets), once its outcome is recorded.
func (g *Gateway) passThrough(resp *http.Response, ob *outbound) error {
	if err := g.bindPassedThrough(resp, ob); err != nil {
		return err
	}
	ob.ex.bytesOut = resp.ContentLength
	if err := g.record(resp.Request.Context(), ob.ex, audit.KindOutcome); err != nil {
		return err
	}
	if !ob.scrub.empty() {
		resp.Body = ob.scrub.reader(resp.Body)
		// Scrubbing may change the length.
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	return nil
}

// minimiseResponse reads a JSON body whole, binds what it creates, minimises
// and scrubs it, and records the outcome. Whatever goes wrong, nothing of the
// vendor's body is passed on.
func (g *Gateway) minimiseResponse(resp *http.Response, ob *outbound) error {
	ctx, ex := resp.Request.Context(), ob.ex
	raw, err := readResponse(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 == 2 {
		if err := g.bindCreated(ctx, ob, raw); err != nil {
			return err
		}
	}
	d := ob.decision
	fields, def := d.Response.Fields, d.Response.Default
	if c := ob.op.cfg.DisclosesWhen; c != nil && resp.StatusCode/100 == 2 && !outcomeDiscloses(raw, c) {
		fields, def = metadataOnly(fields, ob.op.cfg.Fields.Response), policy.ActionDrop
	}
	if ob.op.answers != nil {
		fields = booleansOnly(fields, ob.op.answers)
	}
	m := minimise.New(fields, def, ob.hashKey, ex.now)
	m.Identify = ob.op.searchable
	m.Tokenize = g.tokenizer(ctx, ob)
	_, span := g.stage(ctx, spanMinimise)
	out, err := m.Minimise(raw)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("consentgate.withheld", len(out.Withheld)))
	}
	span.End()
	if err != nil {
		return err
	}
	body := redactTokenized(ob.scrub.bytes(out.Body), resp.Header, ob.tokenized)
	if unknown := undeclared(out.Withheld, ob.op.cfg.Fields.Response); len(unknown) > 0 {
		// A vendor that adds fields is told apart from one the profile
		// describes: nobody decided on them, so they were dropped, and said.
		g.metrics.unknownFields.WithLabelValues(ex.vendor, ex.op).Add(float64(len(unknown)))
		g.log.Warn("vendor response carried fields its profile does not name; they were withheld", logRequestID, ex.requestID,
			"vendor", ex.vendor, "operation", ex.op, "fields", unknown)
	}
	ex.withheld, ex.disclosed, ex.tokenized, ex.bytesOut = out.Withheld, out.Disclosed, out.Tokenized, int64(len(body))
	ex.categories = slices.Compact(slices.Sorted(slices.Values(append(ex.categories, disclosedCategories(out.Disclosed, ob.op.cfg.Fields.Response)...))))
	for _, val := range out.Identifiers {
		ex.identifiers = append(ex.identifiers, ob.identifiers.HMAC(val))
	}
	if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
		return err
	}
	resp.Header.Set("X-Consentgate-Withheld", strconv.Itoa(len(out.Withheld)))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// redactTokenized redacts the values the app got as tokens wherever else the
// answer carries them: an error message, a header.
func redactTokenized(body []byte, h http.Header, values []string) []byte {
	if len(values) == 0 {
		return body
	}
	s := newScrubber(values)
	s.header(h)
	return s.bytes(body)
}

// errTokenVault means a value was to be tokenized and could not be: the
// vendor's answer is not passed on.
var errTokenVault = errors.New("token vault")

// tokenizer makes the tokens of a response under the call's consent: each
// bound to the end user, app, vendor, field and the field's category, in the
// format the profile gives the field.
func (g *Gateway) tokenizer(ctx context.Context, ob *outbound) func(path, value string) (string, error) {
	ex := ob.ex
	return func(path, value string) (string, error) {
		if g.tokens == nil || ex.consentID == "" {
			return "", fmt.Errorf("%w: %s is to be tokenized and there is no vault or no consent to bind it to", errTokenVault, path)
		}
		f := ob.op.cfg.Tokens[path]
		b := tokens.Binding{ConsentID: ex.consentID, Subject: ex.subject, App: ex.app, Category: ob.op.cfg.Fields.Response[path], Vendor: ex.vendor, Field: path}
		tok, err := g.tokens.Tokenize(ctx, b, f.Tokens(), f != nil && f.Deterministic, value)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", errTokenVault, path, err)
		}
		ob.tokenized = append(ob.tokenized, value)
		return tok, nil
	}
}

// outcomeDiscloses reports whether the response's c.Field (a dotted path of
// objects) holds one of c.Equals. A body that is not an object, or lacks the
// field, discloses nothing.
func outcomeDiscloses(raw []byte, c *configs.DisclosesWhen) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	for _, key := range strings.Split(c.Field, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = obj[key]
	}
	s, ok := v.(string)
	return ok && slices.Contains(c.Equals, s)
}

// countData counts the body fields and query parameters among withheld names.
func countData(withheld []string) int {
	n := 0
	for _, name := range withheld {
		if !strings.HasPrefix(name, "header:") {
			n++
		}
	}
	return n
}

// booleansOnly keeps the answers a decision keeps only where they are true or
// false: anything else at their paths is withheld.
func booleansOnly(actions map[string]string, answers map[string]bool) map[string]string {
	out := maps.Clone(actions)
	for path := range answers {
		if out[path] == policy.ActionKeep {
			out[path] = minimise.ActionKeepBool
		}
	}
	return out
}

// metadataOnly keeps the decision's actions for the profile's metadata
// fields and drops every other field.
func metadataOnly(actions, categories map[string]string) map[string]string {
	out := make(map[string]string, len(actions))
	for path, action := range actions {
		if categories[path] == "metadata" {
			out[path] = action
		} else {
			out[path] = policy.ActionDrop
		}
	}
	return out
}

// undeclared are the withheld paths the profile does not name, as the log
// may show them: a segment that could be someone's data (a run of digits, an
// e-mail address, a long one) is redacted, as in the audit record.
func undeclared(withheld []string, declared map[string]string) []string {
	var out []string
	for _, p := range withheld {
		if _, ok := declared[p]; ok {
			continue
		}
		segs := strings.Split(p, ".")
		for i, seg := range segs {
			if len(seg) > 64 || strings.Contains(seg, "@") || digitRun.MatchString(seg) {
				segs[i] = redactedName
			}
		}
		out = append(out, strings.Join(segs, "."))
	}
	return out
}

var digitRun = regexp.MustCompile(`[0-9]{4,}`)
