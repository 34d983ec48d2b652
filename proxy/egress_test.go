package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
)

// Issue 14 finding 8: the deny list had gaps (::/96, Teredo 2001::/32,
// fec0::/10, documentation and AS112 ranges...). It is IANA's special-purpose
// registries whole: the first and last address of every range is refused.
func TestInternalAddresses(t *testing.T) {
	for _, r := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32", "192.0.0.170/32", "192.0.0.171/32",
		"192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "224.0.0.0/4",
		"::1/128", "::/128", "::/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64",
		"2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48", "2001:3::/32",
		"2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28", "2001:db8::/32", "2002::/16",
		"2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		p := netip.MustParsePrefix(r)
		for _, ip := range []netip.Addr{p.Addr(), lastAddr(p)} {
			if !internal(ip) {
				t.Errorf("%s (of %s) is not refused", ip, r)
			}
		}
	}
	for _, ip := range []string{"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.0.2.1", "64:ff9b::a00:1", "2002:a00:1::", "2001:0:4136:e378::1"} {
		if !internal(netip.MustParseAddr(ip)) {
			t.Errorf("%s is not refused", ip)
		}
	}
	// Vendors' real addresses pass, IPv4-mapped ones by the IPv4 inside.
	for _, ip := range []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.0.1.255", "198.20.0.1", "223.255.255.255",
		"2a00:1450:4001::1", "2606:4700::1111", "2001:200::1", "::ffff:8.8.8.8"} {
		if internal(netip.MustParseAddr(ip)) {
			t.Errorf("%s is refused", ip)
		}
	}
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// fakeResolver answers each lookup with the next answer, as a rebinding DNS
// server would: the dialer must resolve once.
type fakeResolver struct {
	answers [][]netip.Addr
	calls   int
}

func (f *fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	a := f.answers[min(f.calls, len(f.answers)-1)]
	f.calls++
	return a, nil
}

func TestEgressDialerRefusesInternalAndResolvesOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	loop := netip.MustParseAddr("127.0.0.1")

	// Not pinned: a host that resolves to loopback is refused.
	d := newEgressDialer(&net.Dialer{}, nil, port)
	d.resolver = &fakeResolver{answers: [][]netip.Addr{{loop}}}
	if _, err := d.DialContext(context.Background(), "tcp", "vendor.example:"+port); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("loopback not pinned: err = %v", err)
	}
	// An IP literal is judged the same way.
	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:"+port); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("loopback literal: err = %v", err)
	}
	// Another port than the profile's is refused before any lookup.
	if _, err := d.DialContext(context.Background(), "tcp", "vendor.example:22"); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("other port: err = %v", err)
	}
	// Pinned: dialled, by the address that was checked, with one lookup.
	r := &fakeResolver{answers: [][]netip.Addr{{netip.MustParseAddr("10.0.0.1"), loop}, {netip.MustParseAddr("169.254.169.254")}}}
	d = newEgressDialer(&net.Dialer{}, []netip.Addr{loop}, port)
	d.resolver = r
	c, err := d.DialContext(context.Background(), "tcp", "vendor.example:"+port)
	if err != nil {
		t.Fatalf("pinned loopback: %v", err)
	}
	if got := c.RemoteAddr().String(); got != ln.Addr().String() {
		t.Errorf("dialled %s, want %s", got, ln.Addr())
	}
	c.Close()
	if r.calls != 1 {
		t.Errorf("%d lookups for one dial", r.calls)
	}
}

// A forwarded request for a path outside the vendor's base is refused like any
// gateway refusal: recorded, with its request id.
func TestForwardPathOutsideTheBaseIsRecorded(t *testing.T) {
	env := newTestEnv(t)
	f := NewForward(env.gw, env.ca)
	r := httptest.NewRequest("GET", "/elsewhere", nil)
	r = r.WithContext(identity.With(r.Context(), identity.Identity{Role: identity.RoleApp, Name: "web"}))
	rec := httptest.NewRecorder()
	f.pipeline(env.gw.vendorsNow()["echo"]).ServeHTTP(rec, r)
	id := rec.Header().Get("X-Request-Id")
	if rec.Code != http.StatusNotFound || id == "" || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("%d, X-Request-Id %q: %s", rec.Code, id, rec.Body)
	}
	for _, x := range env.exportAll(t) {
		if x.Kind == audit.KindOutcome && x.RequestID == id {
			if x.App != "web" || x.Vendor != "echo" || x.Status != http.StatusNotFound {
				t.Errorf("outcome record %+v", x)
			}
			return
		}
	}
	t.Error("no outcome record for the refusal")
}

// From a fixed source address only its IP family can be reached: a vendor that
// resolves to the other family is refused, naming why, rather than dialled
// from another address the vendor does not list.
func TestEgressDialerKeepsToTheSourceFamily(t *testing.T) {
	six := netip.MustParseAddr("::1")
	d := newEgressDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}, []netip.Addr{six}, "443")
	d.source = netip.MustParseAddr("127.0.0.1")
	d.resolver = &fakeResolver{answers: [][]netip.Addr{{six}}}
	_, err := d.DialContext(context.Background(), "tcp", "vendor.example:443")
	if !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), "another IP family") {
		t.Fatalf("err = %v", err)
	}
}
