package oauth

import (
	"net/url"
	"strings"

	"github.com/consentgate/consentgate/configs"
)

// returnAllowed reports whether raw is among targets, the app's allowed return
// URLs (the policy data's apps.<id>.oauth_return_to; none: nowhere, deny by
// default). An entry ending in "/" allows every path under it, any other entry
// exactly its path; scheme and host must match exactly, and the port too
// except for an http entry to a loopback host, where any port is allowed
// (RFC 8252 §7.3). The query is the app's own.
func returnAllowed(targets []*url.URL, raw string) bool {
	u, err := configs.ReturnToURL(raw)
	if err != nil {
		return false
	}
	for _, e := range targets {
		if e.Scheme != u.Scheme || !strings.EqualFold(e.Hostname(), u.Hostname()) {
			continue
		}
		anyPort := e.Scheme == "http" && configs.LoopbackHost(e.Hostname())
		if !anyPort && portOf(e) != portOf(u) {
			continue
		}
		if strings.HasSuffix(e.Path, "/") && strings.HasPrefix(u.Path, e.Path) || u.Path == e.Path {
			return true
		}
	}
	return false
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}
