package proxy

import (
	"net/url"
	"testing"

	"github.com/consentgate/consentgate/configs"
)

// Profiles that share a host are told apart by port, never by map order (a
// CONNECT to one sandbox was refused whenever another on 127.0.0.1 won).
func TestForwardTellsVendorsOnOneHostApartByPort(t *testing.T) {
	mk := func(id, base string) *vendor {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		return &vendor{cfg: &configs.Vendor{ID: id}, base: u}
	}
	a, b, c := mk("a", "https://127.0.0.1:8001"), mk("b", "https://127.0.0.1:8002"), mk("c", "https://api.example")
	g := &Gateway{}
	g.set.Store(newVendorSet(map[string]*vendor{"a": a, "b": b, "c": c}))
	f := &Forward{gw: g}
	for _, tc := range []struct {
		host, port string
		want       *vendor
	}{
		{"127.0.0.1", "8001", a},
		{"127.0.0.1", "8002", b},
		{"127.0.0.1", "443", nil}, // two vendors: 443 names neither
		{"127.0.0.1", "9", nil},
		{"API.example", "443", c},
		{"api.example", "8443", nil},
		{"other.example", "443", nil},
	} {
		if got := f.vendorAt(tc.host, tc.port); got != tc.want {
			t.Errorf("%s:%s: got %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}
