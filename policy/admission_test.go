package policy

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// With every evaluation slot taken, a decision waits QueueWait and is then a
// busy deny: not the policy's answer, not remembered, counted apart.
func TestBusyWhenNoEvaluationSlotFrees(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", memoPolicy)
	reg := prometheus.NewRegistry()
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}, Timeout: 5 * time.Second,
		MaxConcurrent: 1, QueueWait: 30 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{App: App{ID: "web"}, Operation: "v.ok"}
	e.slots <- struct{}{} // an evaluation in progress
	start := time.Now()
	d := e.Decide(context.Background(), in)
	if !d.Busy || d.Allow || d.Reasons[0] != ReasonBusy || d.Err == "" {
		t.Fatalf("decision with no free slot: %+v", d)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("gave up after %s, before QueueWait", waited)
	}
	<-e.slots
	if d := e.Decide(context.Background(), in); d.Busy || !d.Allow {
		t.Errorf("with the slot free again: %+v (a busy answer was remembered?)", d)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "consentgate_policy_decisions_total" {
			for _, m := range mf.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["busy"] != 1 || counts["allow"] != 1 || counts["error"] != 0 {
		t.Errorf("decisions by result %v, want one busy and one allow", counts)
	}
}

// A caller that gives up while waiting is not kept waiting for QueueWait.
func TestWaitForSlotEndsWithTheCaller(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", memoPolicy)
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}, MaxConcurrent: 1, QueueWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.slots <- struct{}{}
	defer func() { <-e.slots }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d := e.Decide(ctx, &Input{App: App{ID: "web"}, Operation: "v.ok"})
	if d.Allow || d.Busy || d.Reasons[0] != ReasonEvalError {
		t.Errorf("decision for a caller that left: %+v", d)
	}
}

// The evaluator goroutines end once nothing holds the engine. Only evaluator
// goroutines are counted: other tests' goroutines come and go meanwhile.
func TestEvaluatorsEndWithTheEngine(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", memoPolicy)
	engines := make([]*Engine, 3)
	for i := range engines {
		e, err := New(context.Background(), Options{Source: Source{Dir: dir}, MaxConcurrent: 4})
		if err != nil {
			t.Fatal(err)
		}
		e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"})
		engines[i] = e
	}
	alive := evaluators()
	if alive < 12 {
		t.Fatalf("%d evaluator goroutines with three engines of 4 alive", alive)
	}
	runtime.KeepAlive(engines)
	engines = nil
	deadline := time.Now().Add(10 * time.Second)
	for evaluators() > alive-12 {
		if time.Now().After(deadline) {
			t.Fatalf("%d evaluator goroutines, %d with the three engines alive: they outlive their engine", evaluators(), alive)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// evaluators counts the goroutines running evaluator.
func evaluators() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "policy.evaluator(")
		}
		buf = make([]byte, 2*len(buf))
	}
}
