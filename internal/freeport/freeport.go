// Package freeport hands out loopback ports nothing listens on, for the
// servers dev mode, tests and benchmarks start: each port at most once per
// process, so two servers started one after the other never get the same.
package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// handedOut is every port Loopback has returned in this process: one process
// (a test binary above all) asks for several, and two of them the same would
// leave the second listener unable to bind.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Loopback is a loopback port nothing listened on a moment ago. It is taken
// below Linux's ephemeral range (32768 up) when one is free there: a server
// that binds it seconds later (the ACME solver, a Vault or PostgreSQL being
// started) would otherwise race the kernel handing it out for ":0" meanwhile.
func Loopback() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 64 {
		port := 20000 + rand.IntN(12768)
		if handedOut.ports[port] {
			continue // free now, but promised to a listener that may not be up yet
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			handedOut.ports[port] = true
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	handedOut.ports[port] = true
	return port, nil
}

// LoopbackAddr is Loopback as "127.0.0.1:port".
func LoopbackAddr() (string, error) {
	port, err := Loopback()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
