package proxy

import (
	"net/http"
	"strings"
)

// standardResponseHeaders pass from a vendor's answer to the app: they
// describe the answer, not a person.
var standardResponseHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Date": true,
	"Cache-Control": true, "Expires": true, "Pragma": true, "Vary": true, "Retry-After": true,
	"Content-Language": true, "Etag": true, "Last-Modified": true, "Age": true}

// minimiseResponseHeaders keeps the standard headers, rate limits and those
// the operation declares (fields.response_headers), and withholds the rest: a
// vendor may echo a name or a birth number in a header of its own, which no
// policy decided the app may see. It returns how many it withheld.
func minimiseResponseHeaders(h http.Header, op *operation) int {
	withheld := 0
	for name := range h {
		if standardResponseHeaders[name] || rateLimitHeader(name) || op.responseHeaders[name] {
			continue
		}
		delete(h, name)
		withheld++
	}
	return withheld
}

// rateLimitHeader: X-RateLimit-*, X-Rate-Limit-*, RateLimit-* and RateLimit
// (the IETF draft), numbers a vendor states about the company's quota.
func rateLimitHeader(name string) bool {
	return hasPrefixFold(name, "x-ratelimit") || hasPrefixFold(name, "x-rate-limit") || hasPrefixFold(name, "ratelimit")
}

// hasPrefixFold is strings.HasPrefix ignoring case, without lowering a copy of s
// for every header of every answer.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
