package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/configs"
)

func fuzzVendor() *vendor {
	v := &vendor{}
	for _, op := range []configs.Operation{
		{ID: "x.person", Method: "GET", Path: "/openapi/glClientIdentity/v1/personalData"},
		{ID: "x.thing", Method: "GET", Path: "/things/{id}"},
		{ID: "x.sub", Method: "POST", Path: "/things/{id}/parts/{part}"},
		{ID: "x.create", Method: "POST", Path: "/sessions/"},
		{ID: "x.cb", Method: "POST", Path: "/status", Callback: true},
	} {
		v.ops = append(v.ops, compileOperation(&op))
	}
	return v
}

// A matched route is the operation the policy will be asked about, so it must
// be exactly the template: same method, same number of segments, every literal
// equal after unescaping, no dot, empty or slash-bearing segment, never a
// callback; and the same segments, joined again, find the same operation.
func FuzzRouteMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"GET", "/things/1"}, {"GET", "/things/%2e%2e"}, {"GET", "/things/a%2Fb"}, {"POST", "/sessions/"},
		{"POST", "/things/1/parts/2"}, {"POST", "/status"}, {"GET", "/openapi/glClientIdentity/v1/personalData"},
		{"GET", "/things//"}, {"GET", "/things/%zz"}, {"GET", "/Things/1"},
	} {
		f.Add(s[0], s[1])
	}
	v := fuzzVendor()
	f.Fuzz(func(t *testing.T, method, escaped string) {
		op, err := v.match(method, escaped)
		if err != nil {
			if op != nil {
				t.Fatal("an error with an operation")
			}
			return
		}
		if op.cfg.Callback || op.cfg.Method != method {
			t.Fatalf("%s %s matched %s", method, escaped, op.cfg.ID)
		}
		p := strings.TrimPrefix(escaped, "/")
		if strings.HasSuffix(p, "/") != op.trailing {
			t.Fatalf("%s: trailing slash differs from %s", escaped, op.cfg.Path)
		}
		segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
		if len(segs) != len(op.segments) {
			t.Fatalf("%s: %d segments for %s", escaped, len(segs), op.cfg.Path)
		}
		for i, raw := range segs {
			s, err := url.PathUnescape(raw)
			if err != nil || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\") {
				t.Fatalf("%s: segment %q went through", escaped, raw)
			}
			if op.segments[i] != "" && op.segments[i] != s {
				t.Fatalf("%s: segment %q is not %q of %s", escaped, s, op.segments[i], op.cfg.Path)
			}
		}
		// The template with this path's values in its placeholders is the
		// same path, so a plain request for it finds the same operation.
		again, err := v.match(method, "/"+strings.Join(segs, "/")+map[bool]string{true: "/"}[op.trailing])
		if err != nil || again != op {
			t.Fatalf("%s matched %s, its own path did not: %v", escaped, op.cfg.ID, err)
		}
	})
}
