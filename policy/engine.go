package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTimeout bounds one evaluation.
const DefaultTimeout = 50 * time.Millisecond

// DefaultQueueWait bounds how long a decision waits for an evaluation slot.
const DefaultQueueWait = 500 * time.Millisecond

// Options configure an Engine.
type Options struct {
	Source  Source
	Timeout time.Duration // default DefaultTimeout
	// MaxConcurrent is how many evaluations run at once (default GOMAXPROCS).
	// More would only share the same cores, so that every one of them takes
	// longer and more of them run out of Timeout; the others wait in turn.
	MaxConcurrent int
	// QueueWait bounds the wait for a turn (default DefaultQueueWait). A
	// decision that waits longer is Busy: the engine did not decide.
	QueueWait time.Duration
	Logger    *slog.Logger // nil discards
	// Registerer receives the engine's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// MemoEntries bounds the decisions a revision remembers (see memo); 0 means
	// DefaultMemoEntries, a negative number turns remembering off.
	MemoEntries int
	// Contract, when set, is what every revision must fit before it serves
	// (see Contract); nil checks the decision shape on the smoke input only.
	Contract *Contract
	// OnRevision is called after each successful load with the new revision id,
	// and after each failed reload with the error (the audit log records both).
	OnRevision func(revision string, err error)
}

// Engine holds the current policy revision. Decide only evaluates a query that
// was prepared when the revision was loaded; Reload prepares a new revision and
// swaps it in only if it works, so a broken edit never replaces a working policy.
type Engine struct {
	opts    Options
	onServe []func() // guarded by mu
	log     *slog.Logger
	cur     atomic.Pointer[revision]
	metrics *metrics
	slots   chan struct{} // evaluations admitted (MaxConcurrent)
	work    chan *evalJob // to the MaxConcurrent evaluator goroutines

	mu       sync.Mutex // serialises reloads and guards the status fields below
	lastErr  string
	lastErrT time.Time
	failures int
	history  []Revision // see remember
}

// Status is what /v1/policy/status shows.
type Status struct {
	Revision       string    `json:"revision"`
	Source         string    `json:"source"`
	LoadedAt       time.Time `json:"loaded_at"`
	Files          []string  `json:"files"`
	ReloadFailures int       `json:"reload_failures"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	// Memo says whether decisions are remembered, and why not.
	Memo string `json:"memo"`
}

// New loads the policy; a policy that does not load prevents start-up.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MemoEntries == 0 {
		o.MemoEntries = DefaultMemoEntries
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if o.QueueWait <= 0 {
		o.QueueWait = DefaultQueueWait
	}
	e := &Engine{opts: o, log: o.Logger, metrics: newMetrics(o.Registerer), slots: make(chan struct{}, o.MaxConcurrent),
		work: make(chan *evalJob)}
	for range o.MaxConcurrent {
		go evaluator(e.work)
	}
	runtime.AddCleanup(e, func(work chan *evalJob) { close(work) }, e.work)
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	rev, err := load(ctx, o.Source, o.MemoEntries, o.Contract)
	if err != nil {
		return nil, err
	}
	e.cur.Store(rev)
	e.remember(rev)
	e.metrics.revision(rev.id)
	e.log.Info("policy loaded", "revision", rev.id, "source", o.Source.String(), "files", len(rev.files), "memo", rev.memo.describe())
	if o.OnRevision != nil {
		o.OnRevision(rev.id, nil)
	}
	return e, nil
}

// CheckContract reports whether the policy source fits c, the contract of
// vendor profiles about to be reloaded: the profiles are refused when it
// does not. Nothing changes either way (SetContract does).
func (e *Engine) CheckContract(ctx context.Context, c *Contract) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := load(ctx, e.opts.Source, e.opts.MemoEntries, c)
	return err
}

// SetContract makes c what every later revision must fit (the vendor
// profiles now in service).
func (e *Engine) SetContract(c *Contract) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.Contract = c
}

// Reload loads the source again. On any failure the current revision stays in
// service and the failure is logged, counted and shown in Status.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rev, err := load(ctx, e.opts.Source, e.opts.MemoEntries, e.opts.Contract)
	if err != nil {
		e.failures++
		e.lastErr, e.lastErrT = err.Error(), time.Now()
		e.metrics.reloadFailures.Inc()
		e.log.Error("policy reload failed; keeping the current revision", "revision", e.cur.Load().id, "error", err.Error())
		if e.opts.OnRevision != nil {
			e.opts.OnRevision(e.cur.Load().id, err)
		}
		return err
	}
	old := e.cur.Swap(rev)
	e.remember(rev)
	e.metrics.revision(rev.id)
	for _, fn := range e.onServe {
		fn()
	}
	if e.lastErr != "" {
		// The error shown at /v1/policy/status is about the revision in
		// service: a good one after a failure clears it, and says so.
		e.log.Info("policy reload succeeded after a failure", "revision", rev.id, "previous_error", e.lastErr)
		e.lastErr, e.lastErrT = "", time.Time{}
	}
	if old.id != rev.id {
		e.log.Info("policy revision changed", "from", old.id, "to", rev.id, "memo", rev.memo.describe())
		if e.opts.OnRevision != nil {
			e.opts.OnRevision(rev.id, nil)
		}
	}
	return nil
}

// OnServe calls fn after every revision a reload puts into service (with mu
// held: fn must not reload).
func (e *Engine) OnServe(fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onServe = append(e.onServe, fn)
}

// Purposes are the purposes the policy data defines (data.purposes), which the
// consent registry accepts.
func (e *Engine) Purposes() []string { return e.cur.Load().purposes }

// Revision is the id of the policy in service.
func (e *Engine) Revision() string { return e.cur.Load().id }

// Status reports the revision in service and the last reload failure.
func (e *Engine) Status() Status {
	rev := e.cur.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Revision: rev.id, Source: e.opts.Source.String(), LoadedAt: rev.loadedAt, Files: rev.files,
		ReloadFailures: e.failures, LastError: e.lastErr, LastErrorAt: e.lastErrT, Memo: rev.memo.describe()}
}

// Decide evaluates the policy for one call. It never returns an error: whatever
// goes wrong is a deny with a fixed reason, and the detail is in Decision.Err.
func (e *Engine) Decide(ctx context.Context, in *Input) Decision {
	start := time.Now()
	rev := e.cur.Load()
	key, memoised := rev.memo.keyOf(in)
	return e.decide(ctx, rev, start, key, memoised, in, nil)
}

// DecideRaw evaluates an input given as a JSON-like tree, as `consentgate policy
// eval` reads it from a file.
//
// The decision's maps and slices may be shared with other calls' decisions (see
// memo): callers read them and never change them.
func (e *Engine) DecideRaw(ctx context.Context, input map[string]any) Decision {
	start := time.Now()
	rev := e.cur.Load()
	key, memoised := rev.memo.key(input)
	return e.decide(ctx, rev, start, key, memoised, nil, input)
}

// decide answers from the memo, or evaluates the input (raw, else in's value,
// built only then) and remembers the answer.
func (e *Engine) decide(ctx context.Context, rev *revision, start time.Time, key [sha256.Size]byte, memoised bool, in *Input, raw map[string]any) Decision {
	d, hit := Decision{}, false
	if memoised {
		d, hit = rev.memo.get(key)
	}
	if !hit {
		if raw == nil {
			raw = in.value()
		}
		d = e.evaluateInTurn(ctx, rev, raw)
		if memoised && d.Err == "" {
			rev.memo.put(key, d)
		}
	}
	d.ID = uuid.NewString()
	d.Revision = rev.id
	e.metrics.observe(d, hit, time.Since(start))
	return d
}

// evaluateInTurn evaluates once one of the MaxConcurrent slots is free. The
// evaluation's Timeout starts with its turn, so waiting does not eat into it.
func (e *Engine) evaluateInTurn(ctx context.Context, rev *revision, input map[string]any) Decision {
	wait := time.NewTimer(e.opts.QueueWait)
	defer wait.Stop()
	select {
	case e.slots <- struct{}{}:
	case <-wait.C:
		d := deny(ReasonBusy, "no evaluation slot within "+e.opts.QueueWait.String())
		d.Busy = true
		return d
	case <-ctx.Done():
		return deny(ReasonEvalError, "waiting for an evaluation slot: "+ctx.Err().Error())
	}
	defer func() { <-e.slots }()
	job := &evalJob{ctx: ctx, rev: rev, input: input, timeout: e.opts.Timeout, done: make(chan Decision, 1)}
	e.work <- job
	return <-job.done
}

// evalJob is one evaluation handed to an evaluator goroutine.
type evalJob struct {
	ctx     context.Context
	rev     *revision
	input   map[string]any
	timeout time.Duration
	done    chan Decision
}

// evaluator runs evaluations on one long-lived goroutine. OPA's evaluator
// recurses deeply: run on the calls' own goroutines, it grew each one's stack
// again after every garbage collection had shrunk it (5% of the gateway's CPU
// with every call evaluated); a few evaluators keep theirs. It ends when the
// engine is garbage: nothing else holds work.
func evaluator(work <-chan *evalJob) {
	for j := range work {
		j.done <- evaluate(j.ctx, j.rev, j.input, j.timeout)
	}
}

func evaluate(ctx context.Context, rev *revision, input map[string]any, timeout time.Duration) Decision {
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		return deny(ReasonEvalError, "converting input: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rs, err := rev.query.Eval(ctx, rego.EvalParsedInput(value))
	switch {
	case err != nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)):
		d := deny(ReasonTimeout, err.Error())
		d.Busy = true
		return d
	case err != nil:
		return deny(ReasonEvalError, err.Error())
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		return deny(ReasonUndefined, Query+" is undefined for this input")
	case len(rs) > 1:
		return deny(ReasonMalformed, "more than one result")
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return deny(ReasonMalformed, err.Error())
	}
	return d
}
