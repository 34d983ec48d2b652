package proxy

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/consentgate/consentgate/configs"
)

// returnTargets are where each app may have its end users sent back after an
// authorization (apps[].oauth_return_to). An app not listed may send them
// nowhere: deny by default.
type returnTargets map[string][]*url.URL

func compileReturnTargets(apps []configs.App) (returnTargets, error) {
	out := returnTargets{}
	for _, a := range apps {
		for _, s := range a.OAuthReturnTo {
			u, err := configs.ReturnToURL(s)
			if err != nil {
				return nil, fmt.Errorf("apps %s oauth_return_to: %w", a.ID, err)
			}
			out[a.ID] = append(out[a.ID], u)
		}
	}
	return out, nil
}

// allowed reports whether app may send its end user to raw. An entry ending in
// "/" allows every path under it, any other entry exactly its path; scheme and
// host must match exactly, and the port too except for an http entry to a
// loopback host, where any port is allowed (RFC 8252 §7.3). The query is the
// app's own.
func (rt returnTargets) allowed(app, raw string) bool {
	u, err := configs.ReturnToURL(raw)
	if err != nil {
		return false
	}
	for _, e := range rt[app] {
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
