package configs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ReturnToURL parses a URL an end user may be sent back to after an OAuth2
// authorization: an allowed entry of apps[].oauth_return_to, or the return_to
// an app asks for. It must be https (or http to a loopback host, RFC 8252
// §7.3), carry no user info or fragment, and have a path a browser reads the
// way consentgate does: no dot segments, encoded slashes or backslashes.
func ReturnToURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && LoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("%q must use https (http only to a loopback host)", s)
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("%q must not carry user info or a fragment", s)
	}
	if err := cleanPath(u); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// cleanPath refuses paths a browser would resolve to another resource than the
// one an allowlist check saw.
func cleanPath(u *url.URL) error {
	raw := strings.ToLower(u.EscapedPath())
	if strings.ContainsAny(u.Path, "\\") || strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%2e") {
		return errors.New("the path holds an encoded slash, dot or a backslash")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("the path holds a dot segment")
		}
	}
	return nil
}

// LoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
