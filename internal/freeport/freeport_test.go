package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports are bindable and never handed out twice, even after their listeners
// closed.
func TestLoopbackNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		port, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		ln.Close()
	}
}
