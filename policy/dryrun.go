package policy

import (
	"context"
	"time"
)

// DryRunInput is a dry run: a candidate policy folder, loaded as the engine
// in service would load it, and the recorded decisions to ask it again. It
// is plain data, so that a dry run can run in a process of its own (the
// candidate is code an admin uploaded).
type DryRunInput struct {
	Dir, VerificationKey, KeyAlgorithm string
	// Timeout bounds each decision, as in service.
	Timeout  time.Duration
	Contract *Contract
	// Fields are the operations' field maps and identifiers, by
	// FieldsKey(vendor, operation).
	Fields     map[string]OperationFields
	Decisions  []Recorded
	MaxChanges int
	// Bound is how long the whole dry run may take (0: no bound of its own).
	Bound time.Duration
}

// OperationFields are one operation's field maps and identifiers.
type OperationFields struct {
	Request, Response map[string]string
	Identifiers       []string
}

// FieldsKey is an operation's key in DryRunInput.Fields.
func FieldsKey(vendor, operation string) string { return vendor + " " + operation }

// DryRunResult is what a dry run found: the candidate (its id and text), and
// what would change; Error says why the candidate does not load.
type DryRunResult struct {
	Candidate Revision
	Replay    Replay
	Error     string
}

// DryRunInput is a dry run of the folder dir against this engine: its
// signature key, decision timeout and contract.
func (e *Engine) DryRunInput(dir string) DryRunInput {
	e.mu.Lock()
	defer e.mu.Unlock()
	return DryRunInput{Dir: dir, VerificationKey: e.opts.Source.VerificationKey, KeyAlgorithm: e.opts.Source.KeyAlgorithm,
		Timeout: e.opts.Timeout, Contract: e.opts.Contract}
}

// DryRun loads the candidate into an engine that never serves and replays the
// decisions; it stops with ctx's error when ctx ends.
func DryRun(ctx context.Context, in DryRunInput) (DryRunResult, error) {
	cand, err := New(ctx, Options{Source: Source{Dir: in.Dir, VerificationKey: in.VerificationKey, KeyAlgorithm: in.KeyAlgorithm},
		Timeout: in.Timeout, MaxConcurrent: 1, MemoEntries: -1, Contract: in.Contract})
	if err != nil {
		return DryRunResult{Error: err.Error()}, nil
	}
	res := DryRunResult{Candidate: cand.Current(), Replay: Replay{MaxChanges: in.MaxChanges}}
	fields := func(vendor, operation string) (map[string]string, map[string]string, []string) {
		f := in.Fields[FieldsKey(vendor, operation)]
		return f.Request, f.Response, f.Identifiers
	}
	for _, d := range in.Decisions {
		if _, err := res.Replay.Add(ctx, cand, fields, d); err != nil {
			return res, err
		}
	}
	return res, nil
}
