package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// What an app fleet's kept-alive connections cost the gateway: n TLS
// connections with the app certificate, each sending one call and then
// staying open and idle, and the server's resident memory before and after.

type idleResult struct {
	conns    int   // connections open and idle when measured
	baseRSS  int64 // before opening them
	idleRSS  int64 // with them open
	firstErr string
}

func idleConnections(t *target, n int) idleResult {
	_, base := treeUsage(t.pid)
	u, err := url.Parse(t.url)
	if err != nil {
		return idleResult{firstErr: err.Error()}
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		first error
	)
	work := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := idleConn(t, u)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if c != nil {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Let the server settle (a Go server's per-connection read buffers, the
	// scavenger) before reading its memory.
	time.Sleep(2 * time.Second)
	_, rss := treeUsage(t.pid)
	r := idleResult{conns: len(conns), baseRSS: base, idleRSS: rss}
	if first != nil {
		r.firstErr = first.Error()
	}
	for _, c := range conns {
		c.Close()
	}
	return r
}

// idleConn opens one connection, sends one call and reads its answer, and
// returns the connection kept alive.
func idleConn(t *target, u *url.URL) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", u.Host, t.tls)
	if err != nil {
		return nil, err
	}
	req := t.newRequest()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	// A refused call (a policy timeout while a thousand connections open at
	// once) leaves the connection open: ask again on it, up to three times.
	var status int
	for try := 0; try < 3 && status != http.StatusOK; try++ {
		if err := req.Write(c); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			c.Close()
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			c.Close()
			return nil, fmt.Errorf("idle connection: status %d, closed by the server", resp.StatusCode)
		}
		status = resp.StatusCode
	}
	if status != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("idle connection: status %d three times", status)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
