package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// ErrAddressRefused means a vendor host resolved to an address consentgate does
// not dial: a private, loopback or otherwise internal one that no profile pins.
var ErrAddressRefused = errors.New("upstream address refused")

// internalPrefixes are networks an egress gateway must not reach on a vendor's
// behalf: a vendor host that resolves into them (by mistake or by DNS rebinding)
// would turn consentgate into a way into the internal network, or onto a
// translation or tunnel that leads there. They are IANA's IPv4 and IPv6
// special-purpose address registries whole (as of 2026), and the deprecated and
// multicast ranges besides; none is where a vendor's API lives.
var internalPrefixes = mustPrefixes(
	// IPv4 special-purpose address registry
	"0.0.0.0/8",          // "this network"
	"10.0.0.0/8",         // private
	"100.64.0.0/10",      // shared address space (carrier-grade NAT)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link-local (cloud metadata services live here)
	"172.16.0.0/12",      // private
	"192.0.0.0/24",       // IETF protocol assignments (and its /29, /32 entries)
	"192.0.2.0/24",       // documentation (TEST-NET-1)
	"192.31.196.0/24",    // AS112-v4
	"192.52.193.0/24",    // AMT
	"192.88.99.0/24",     // deprecated 6to4 relay anycast
	"192.168.0.0/16",     // private
	"192.175.48.0/24",    // direct delegation AS112 service
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // documentation (TEST-NET-2)
	"203.0.113.0/24",     // documentation (TEST-NET-3)
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast
	"224.0.0.0/4",        // multicast
	// IPv6 special-purpose address registry
	"::/128",            // unspecified
	"::1/128",           // loopback
	"::/96",             // deprecated IPv4-compatible
	"::ffff:0:0/96",     // IPv4-mapped: a vendor's AAAA record never holds one
	"64:ff9b::/96",      // IPv4/IPv6 translation (NAT64)
	"64:ff9b:1::/48",    // local-use IPv4/IPv6 translation
	"100::/64",          // discard-only
	"100:0:0:1::/64",    // dummy prefix
	"2001::/23",         // IETF protocol assignments: Teredo 2001::/32, benchmarking, AMT, ORCHID, AS112...
	"2001:db8::/32",     // documentation
	"2002::/16",         // 6to4
	"2620:4f:8000::/48", // direct delegation AS112 service
	"3fff::/20",         // documentation
	"5f00::/16",         // segment routing SIDs
	"fc00::/7",          // unique local
	"fe80::/10",         // link-local
	"fec0::/10",         // deprecated site-local
	"ff00::/8",          // multicast
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// internal reports whether ip is in a network consentgate refuses by default.
// An IPv4-mapped address is judged by the IPv4 address it carries, which is
// what is dialled: Go's resolver gives IPv4 addresses from /etc/hosts in that
// form, so refusing the form would refuse them all.
func internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// egressDialer resolves a vendor host once and dials the address it checked, so
// a second resolution (DNS rebinding) cannot swap in another target. Pinned
// addresses are the ones a profile explicitly allows although internal.
type egressDialer struct {
	dialer   *net.Dialer
	resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	pinned []netip.Addr
	port   string // the only port this vendor may be dialled on
	// source is the profile's egress.source_address: only addresses of its
	// family can be reached from it. Zero: any.
	source netip.Addr
}

func newEgressDialer(dialer *net.Dialer, pinned []netip.Addr, port string) *egressDialer {
	return &egressDialer{dialer: dialer, resolver: net.DefaultResolver, pinned: pinned, port: port}
}

// DialContext is the transport's dial: resolve, check every address, dial the
// first allowed one by IP.
func (d *egressDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if port != d.port {
		return nil, fmt.Errorf("%w: port %s is not the profile's port %s", ErrAddressRefused, port, d.port)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = d.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	var refused, otherFamily []string
	for _, ip := range addrs {
		if internal(ip) && !slices.Contains(d.pinned, ip.Unmap()) {
			refused = append(refused, ip.String())
			continue
		}
		if d.source.IsValid() && d.source.Is4() != ip.Unmap().Is4() {
			otherFamily = append(otherFamily, ip.String())
			continue
		}
		return d.dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
	}
	if len(otherFamily) > 0 {
		return nil, fmt.Errorf("%w: %s resolves to %v, which source address %s cannot reach (another IP family)", ErrAddressRefused, host, otherFamily, d.source)
	}
	return nil, fmt.Errorf("%w: %s resolves only to internal addresses %v that the profile does not pin", ErrAddressRefused, host, refused)
}
