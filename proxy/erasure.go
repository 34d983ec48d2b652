package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
)

// ErasureQueue is the consent registry's erasure outbox (*consent.Registry).
type ErasureQueue interface {
	ClaimErasures(ctx context.Context, n int, lease time.Duration) ([]consent.ErasureJob, error)
	FinishErasure(ctx context.Context, job consent.ErasureJob, callErr error) error
}

// Eraser carries out withdrawals. It takes due erasures from the outbox and
// calls each vendor's erasure operation through the gateway's own pipeline, as
// the app that owns the resource and under its withdrawn consent: certificate,
// secrets, policy and audit records exactly as for an app's call.
type Eraser struct {
	Gateway *Gateway
	Queue   ErasureQueue
	// Interval is how often the outbox is looked at; zero: 5s.
	Interval time.Duration
	// Lease is how long a claimed erasure is left to one attempt before it is
	// due again (a gateway that died mid-call); zero: 2m.
	Lease time.Duration
	// Logger receives failed attempts; nil discards.
	Logger *slog.Logger
}

// Run works the outbox until ctx ends.
func (e *Eraser) Run(ctx context.Context) {
	interval := cmpOr(e.Interval, 5*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.log().Error("erasure outbox unavailable", logError, err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs the erasures due now and returns how many were tried.
func (e *Eraser) RunOnce(ctx context.Context) (int, error) {
	jobs, err := e.Queue.ClaimErasures(ctx, 16, cmpOr(e.Lease, 2*time.Minute))
	if err != nil {
		return 0, err
	}
	for _, job := range jobs {
		callErr := e.Gateway.erase(ctx, job)
		if callErr != nil {
			e.log().Warn("erasure attempt failed", logVendor, job.Vendor, "consent_id", job.ConsentID, "kind", job.Kind,
				"attempt", job.Attempts+1, logError, callErr.Error())
		}
		if err := e.Queue.FinishErasure(context.WithoutCancel(ctx), job, callErr); err != nil {
			return 0, err
		}
	}
	return len(jobs), nil
}

func (e *Eraser) log() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

type erasureCallKey struct{}

// erase calls the operation that erases job's resource. The vendor's 2xx, or a
// 404 (nothing left to erase), is done; anything else is tried again later.
func (g *Gateway) erase(ctx context.Context, job consent.ErasureJob) error {
	v := g.vendorsNow()[job.Vendor]
	if v == nil {
		return fmt.Errorf("no vendor %q is configured", job.Vendor)
	}
	op := v.erasing(job.Kind)
	if op == nil {
		return fmt.Errorf("no operation of vendor %s erases a %s", job.Vendor, job.Kind)
	}
	target, err := erasureTarget(op, job)
	if err != nil {
		return err
	}
	id := identity.Identity{Name: job.Resource.App, Role: identity.RoleApp, URI: "spiffe://" + g.cfg.TrustDomain + "/" + identity.RoleApp + "/" + job.Resource.App}
	ctx = context.WithValue(identity.With(ctx, id), erasureCallKey{}, true)
	req, err := http.NewRequestWithContext(ctx, op.cfg.Method, "/v/"+v.cfg.ID+target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Consent-Id", job.ConsentID)
	w := &answer{header: http.Header{}}
	g.ServeHTTP(w, req)
	if w.status/100 == 2 || (w.status == http.StatusNotFound && w.header.Get("Content-Type") != "application/problem+json") {
		return nil
	}
	var p struct{ Type, Detail string }
	json.Unmarshal(w.body.Bytes(), &p)
	if p.Type != "" {
		return fmt.Errorf("%d %s: %s", w.status, strings.TrimPrefix(p.Type, "urn:consentgate:problem:"), p.Detail)
	}
	return fmt.Errorf("the vendor answered %d", w.status)
}

// erasing is the operation of v that erases kind.
func (v *vendor) erasing(kind string) *operation {
	for _, op := range v.ops {
		if op.cfg.Erases == kind {
			return op
		}
	}
	return nil
}

// erasureTarget is op's path and query filled in with the erased id and the ids
// its creating call named.
func erasureTarget(op *operation, job consent.ErasureJob) (string, error) {
	idOf := func(kind string) (string, error) {
		if kind == job.Kind {
			return job.Resource.ID, nil
		}
		if id := job.Resource.Refs[kind]; id != "" {
			return id, nil
		}
		return "", fmt.Errorf("erasing %s %s needs its %s, which was not recorded when it was created", job.Vendor, job.Kind, kind)
	}
	segs := strings.Split(op.cfg.Path, "/")
	q := url.Values{}
	for _, ref := range op.refs {
		id, err := idOf(ref.kind)
		if err != nil {
			return "", err
		}
		switch name, ok := strings.CutPrefix(ref.where, "query:"); {
		case ok:
			q.Set(name, id)
		case ref.index >= 0:
			segs[ref.index+1] = url.PathEscape(id) // segs[0] is before the leading slash
		}
	}
	path := strings.Join(segs, "/")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path, nil
}

// erasureCall reports whether r is the eraser's own call.
func erasureCall(r *http.Request) bool {
	is, _ := r.Context().Value(erasureCallKey{}).(bool)
	return is
}

// answer is the response an erasure call gets, kept for its status and problem.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	if a.body.Len() < 64<<10 {
		a.body.Write(b)
	}
	return len(b), nil
}

var _ http.ResponseWriter = (*answer)(nil)

// ErasurePlan is what the consent registry needs to plan erasures from the
// profiles: which kinds each vendor erases, and why others cannot.
func ErasurePlan(cfg *configs.Config) *consent.ErasurePlan {
	p := &consent.ErasurePlan{Erases: map[string][]string{}, Unavailable: map[string]string{}}
	for _, v := range cfg.Vendors {
		for _, op := range v.Operations {
			if op.Erases != "" {
				p.Erases[v.ID] = append(p.Erases[v.ID], op.Erases)
			}
		}
		if v.Erasure.Unavailable != "" {
			p.Unavailable[v.ID] = v.Erasure.Unavailable
		}
	}
	return p
}
