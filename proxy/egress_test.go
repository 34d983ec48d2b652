package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestInternalAddresses(t *testing.T) {
	tests := []struct {
		ip       string
		internal bool
	}{
		{"127.0.0.1", true}, {"10.1.2.3", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"100.64.0.1", true}, {"0.0.0.0", true}, {"224.0.0.1", true}, {"255.255.255.255", true},
		{"::1", true}, {"::", true}, {"fe80::1", true}, {"fd00::1", true}, {"ff02::1", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2002:a00:1::", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"100.128.0.1", false}, {"2a00:1450:4001::1", false}, {"::ffff:8.8.8.8", false},
	}
	for _, tt := range tests {
		if got := internal(netip.MustParseAddr(tt.ip)); got != tt.internal {
			t.Errorf("internal(%s) = %v, want %v", tt.ip, got, tt.internal)
		}
	}
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
	d := newEgressDialer(0, nil, port)
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
	d = newEgressDialer(0, []netip.Addr{loop}, port)
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
