package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"

	"github.com/consentgate/consentgate/identity"
)

// csrf guards the console's forms. A browser holding an admin certificate would
// present it to any page that posts to the console, so a state change needs a
// token only the console's own pages carry (bound to the certificate's identity)
// and must come from the console's own origin.
type csrf struct{ secret []byte }

func (c csrf) token(who identity.Identity) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("console form\n" + who.URI))
	return hex.EncodeToString(m.Sum(nil))
}

// check reports whether r is a form post the console's own page made.
func (c csrf) check(r *http.Request) bool {
	if len(c.secret) < 32 || !sameOrigin(r) {
		return false
	}
	who, ok := identity.From(r.Context())
	if !ok {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(c.token(who)))
}

// sameOrigin reports whether the browser says r comes from the console's own
// origin (or says nothing, as a client that is not a browser does). It reads
// headers only, so it runs before a body is read.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}
