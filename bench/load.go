package main

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator: one Go HTTP/1.1 client with kept-alive connections,
// run either closed-loop (c workers, each sending its next request when the
// previous one is answered: c connections) or open-loop (requests scheduled
// at a fixed rate whatever the answers, latency counted from the scheduled
// time so a stalled server cannot hide its stall: no coordinated omission).

// target is one thing measured: where to send the KYC call, with which
// headers and client certificate, and which process serves it.
type target struct {
	name   string
	url    string
	header http.Header
	tls    *tls.Config
	// pid is the server under test; its process tree's CPU and memory are
	// what the report counts.
	pid int
	// check validates one answer in the probe that runs before any load.
	check func(resp *http.Response, body []byte) error
	// audit reads consentgate's audit counters (records, group commits);
	// nil for targets that keep no audit log.
	audit func() (records, commits uint64, err error)
	// streamLag reads the audit stream's lag (records written, not yet
	// acknowledged by the SIEM); nil for targets without a stream.
	streamLag func() (float64, error)
	// archived reads how many audit segments were sealed and archived so
	// far; nil for targets without an archive.
	archived func() (float64, error)
	// consents, when more than one, are the end users' consents the calls
	// take turns under, as calls for many end users do.
	consents []string
	turn     atomic.Uint64
}

// vary sets the consent of req's next call.
func (t *target) vary(req *http.Request) {
	if len(t.consents) > 1 {
		req.Header.Set("X-Consent-Id", t.consents[t.turn.Add(1)%uint64(len(t.consents))])
	}
}

// loadResult is one measured phase.
type loadResult struct {
	conns    int     // closed loop: concurrency; open loop: workers
	rate     float64 // open loop: offered requests/s; 0 for closed loop
	duration time.Duration
	requests uint64 // answered with 200 in the measured window
	errors   uint64 // failed or non-200, warm-up included
	firstErr string
	hist     *histogram
	cpu      time.Duration // CPU of the server under test in the window
	peakRSS  int64         // largest resident set of the server under test
	// auditRecords and auditCommits are the audit records and group commits
	// (fsyncs) consentgate made in the window.
	auditRecords, auditCommits uint64
	// streamLag is the audit stream's lag when the load stopped, and
	// streamDrain how long the SIEM then took to have every record
	// (consentgate-stream only).
	streamLag   float64
	streamDrain time.Duration
	// archived counts the audit segments sealed and archived in the window
	// and the drain after it (consentgate-stream only).
	archived float64
}

func (r loadResult) rps() float64 {
	if r.duration <= 0 {
		return 0
	}
	return float64(r.requests) / r.duration.Seconds()
}

// cpuPer1k is CPU seconds of the server under test per 1,000 answered requests.
func (r loadResult) cpuPer1k() float64 {
	if r.requests == 0 {
		return 0
	}
	return r.cpu.Seconds() / float64(r.requests) * 1000
}

// newTransport is the client side of one phase: at most conns connections,
// all kept alive, HTTP/1.1 (a custom TLS config without ForceAttemptHTTP2
// never negotiates HTTP/2).
func newTransport(cfg *tls.Config, conns int) *http.Transport {
	return &http.Transport{
		TLSClientConfig:       cfg.Clone(),
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       time.Minute,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}
}

func (t *target) newRequest() *http.Request {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		panic(err) // t.url is built by this program
	}
	req.Header = t.header.Clone()
	return req
}

// roundTrip sends req and reads the whole answer. A RoundTripper does not
// modify the request, so a worker sends the same one again and again.
func roundTrip(tr http.RoundTripper, req *http.Request) error {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// probe sends one request and checks the answer, so a misconfigured target
// fails loudly instead of being measured answering errors.
func probe(t *target) error {
	tr := newTransport(t.tls, 1)
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(t.newRequest())
	if err != nil {
		return fmt.Errorf("%s: probe: %w", t.name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: probe: reading the body: %w", t.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: probe: status %d: %.300s", t.name, resp.StatusCode, body)
	}
	if t.check != nil {
		if err := t.check(resp, body); err != nil {
			return fmt.Errorf("%s: probe: %w", t.name, err)
		}
	}
	return nil
}

// checkFullBody accepts the vendor's answer as it left the vendor.
func checkFullBody(_ *http.Response, body []byte) error {
	if !bytes.Equal(body, []byte(kycBody)) {
		return fmt.Errorf("the body is not the vendor's (%d bytes, want %d)", len(body), len(kycBody))
	}
	return nil
}

// phase is the bookkeeping every load phase shares: errors, per-worker
// histograms, and the server's CPU read at the window's edges.
type phase struct {
	t           *target
	measureFrom time.Time
	end         time.Time
	cpuFrom     time.Duration
	cpuTo       time.Duration
	cpuDone     bool // cpuTo was read
	// audit counters at the window's edges
	recFrom, recTo, comFrom, comTo uint64
	sampler                        *rssSampler

	mu       sync.Mutex
	hist     *histogram
	requests uint64
	errors   uint64
	firstErr string
}

func startPhase(t *target, warmup, dur time.Duration) *phase {
	p := &phase{t: t, hist: newHistogram()}
	now := time.Now()
	p.measureFrom = now.Add(warmup)
	p.end = p.measureFrom.Add(dur)
	if t.pid != 0 {
		p.sampler = sampleRSS(t.pid, 100*time.Millisecond)
		// The CPU of the window is read when the window opens and closes.
		time.AfterFunc(time.Until(p.measureFrom), func() {
			rec, com := p.auditCounters()
			cpu, _ := treeUsage(t.pid)
			p.mu.Lock()
			p.cpuFrom, p.recFrom, p.comFrom = cpu, rec, com
			p.mu.Unlock()
		})
		time.AfterFunc(time.Until(p.end), func() {
			cpu, _ := treeUsage(t.pid)
			rec, com := p.auditCounters()
			p.mu.Lock()
			p.cpuTo, p.recTo, p.comTo, p.cpuDone = cpu, rec, com, true
			p.mu.Unlock()
		})
	}
	return p
}

// auditCounters reads the target's audit counters, zero when it has none
// (read before the window opens and after it closes, so that the scrape's
// own CPU is not counted).
func (p *phase) auditCounters() (records, commits uint64) {
	if p.t.audit == nil {
		return 0, 0
	}
	records, commits, err := p.t.audit()
	if err != nil {
		// The column then reads "–"; say why rather than leave it blank.
		fmt.Fprintf(os.Stderr, "bench: %s: audit counters: %v\n", p.t.name, err)
	}
	return records, commits
}

// add merges one worker's counts.
func (p *phase) add(h *histogram, ok, failed uint64, firstErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hist.merge(h)
	p.requests += ok
	p.errors += failed
	if p.firstErr == "" && firstErr != nil {
		p.firstErr = firstErr.Error()
	}
}

func (p *phase) result(conns int, rate float64) loadResult {
	var peak int64
	if p.sampler != nil {
		// The AfterFunc reading the closing CPU fires at p.end; every caller
		// returns after p.end, but give it a moment on a loaded machine.
		for i := 0; i < 100; i++ {
			p.mu.Lock()
			done := p.cpuDone
			p.mu.Unlock()
			if done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		peak = p.sampler.finish()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return loadResult{
		conns: conns, rate: rate, duration: p.end.Sub(p.measureFrom),
		requests: p.requests, errors: p.errors, firstErr: p.firstErr,
		hist: p.hist, cpu: p.cpuTo - p.cpuFrom, peakRSS: peak,
		auditRecords: p.recTo - p.recFrom, auditCommits: p.comTo - p.comFrom,
	}
}

// closedLoop runs conns workers for warmup+dur; only requests sent and
// answered inside the last dur count.
func closedLoop(t *target, conns int, warmup, dur time.Duration) loadResult {
	tr := newTransport(t.tls, conns)
	defer tr.CloseIdleConnections()
	p := startPhase(t, warmup, dur)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHistogram()
			var ok, failed uint64
			var firstErr error
			req := t.newRequest()
			for {
				t0 := time.Now()
				if !t0.Before(p.end) {
					break
				}
				t.vary(req)
				err := roundTrip(tr, req)
				t1 := time.Now()
				if t1.After(p.end) {
					break
				}
				if err != nil {
					failed++
					firstErr = cmp.Or(firstErr, err)
					time.Sleep(10 * time.Millisecond) // a refusing server is not a busy loop
					continue
				}
				if !t0.Before(p.measureFrom) {
					h.record(t1.Sub(t0))
					ok++
				}
			}
			p.add(h, ok, failed, firstErr)
		}()
	}
	wg.Wait()
	return p.result(conns, 0)
}

// openLoop offers rate requests/s for warmup+dur through up to workers
// connections. A request's latency runs from its scheduled time, so time
// spent waiting for a free worker counts.
func openLoop(t *target, rate float64, workers int, warmup, dur time.Duration) loadResult {
	tr := newTransport(t.tls, workers)
	defer tr.CloseIdleConnections()
	p := startPhase(t, warmup, dur)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, 4*workers)
	go func() {
		defer close(due)
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(p.end) {
				return
			}
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			due <- at
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHistogram()
			var ok, failed uint64
			var firstErr error
			req := t.newRequest()
			for at := range due {
				t.vary(req)
				err := roundTrip(tr, req)
				if err != nil {
					failed++
					firstErr = cmp.Or(firstErr, err)
					continue
				}
				if !at.Before(p.measureFrom) {
					h.record(time.Since(at))
					ok++
				}
			}
			p.add(h, ok, failed, firstErr)
		}()
	}
	wg.Wait()
	return p.result(workers, rate)
}
