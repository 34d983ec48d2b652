package consent

import (
	"errors"
	"testing"
	"time"
)

func erasureOptions(clk *clock) Options {
	o := testOptions(clk)
	o.Vendors = []string{"airbank", "kb", "finid", "banqware"}
	o.Erasure = &ErasurePlan{Erases: map[string][]string{"banqware": {"consent"}},
		Unavailable: map[string]string{"finid": "no erasure call"}, MaxAttempts: 3}
	return o
}

// withResources is a consent of testSubject at banqware and finid with a hub
// user and a bank consent created for it.
func withResources(t *testing.T, r *Registry) *Consent {
	t.Helper()
	req := testRequest()
	req.Vendors = []string{"banqware", "finid"}
	c, err := r.Create(t.Context(), "web", req)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []Resource{
		{Vendor: "banqware", Kind: "user", ID: "u-1", ConsentID: c.ID},
		{Vendor: "banqware", Kind: "consent", ID: "bc-1", ConsentID: c.ID, Refs: map[string]string{"user": "u-1"}},
	} {
		if _, err := r.BindResource(t.Context(), res); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestRevocationQueuesErasuresDurably(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		o := erasureOptions(clk)
		r, st := mustOpen(t, b, o)
		ctx := t.Context()
		c := withResources(t, r)
		if jobs, err := r.ClaimErasures(ctx, 10, time.Minute); err != nil || len(jobs) != 0 {
			t.Fatalf("an active consent has erasures: %v %v", jobs, err)
		}
		if _, err := r.Revoke(ctx, "web", "app", c.ID); err != nil {
			t.Fatal(err)
		}
		status, err := r.Erasures(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(status) != 2 || status[0].Vendor != "banqware" || status[0].Kind != "consent" || status[0].Status != ErasurePending ||
			status[1].Vendor != "finid" || status[1].Status != ErasureUnavailable || status[1].Reason != "no erasure call" {
			t.Fatalf("erasure status %+v", status)
		}

		// The gateway dies after claiming: nothing is lost, the job is due again
		// once the lease has passed, after a restart too.
		jobs, err := r.ClaimErasures(ctx, 10, time.Minute)
		if err != nil || len(jobs) != 1 || jobs[0].Resource.ID != "bc-1" || jobs[0].Resource.Refs["user"] != "u-1" {
			t.Fatalf("claimed %+v, %v", jobs, err)
		}
		if again, _ := r.ClaimErasures(ctx, 10, time.Minute); len(again) != 0 {
			t.Fatalf("claimed twice within the lease: %+v", again)
		}
		r.Close()
		r = st.open(t, o)
		clk.Add(time.Minute)
		jobs, err = r.ClaimErasures(ctx, 10, time.Minute)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("after the lease and a restart: %+v, %v", jobs, err)
		}

		// A failed attempt backs off; a success is final.
		if err := r.FinishErasure(ctx, jobs[0], errors.New("vendor answered 503")); err != nil {
			t.Fatal(err)
		}
		if due, _ := r.ClaimErasures(ctx, 10, time.Minute); len(due) != 0 {
			t.Fatal("retried before the backoff")
		}
		clk.Add(3 * time.Second)
		jobs, _ = r.ClaimErasures(ctx, 10, time.Minute)
		if len(jobs) != 1 || jobs[0].Attempts != 1 || jobs[0].Reason != "vendor answered 503" {
			t.Fatalf("after the backoff: %+v", jobs)
		}
		if err := r.FinishErasure(ctx, jobs[0], nil); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
		if due, _ := r.ClaimErasures(ctx, 10, time.Minute); len(due) != 0 {
			t.Fatalf("a done erasure is due again: %+v", due)
		}
		if status, _ := r.Erasures(ctx, c.ID); status[0].Status != ErasureDone || status[0].Attempts != 2 {
			t.Errorf("after success: %+v", status[0])
		}
	})
}

func TestErasureFailsAfterItsAttempts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, erasureOptions(clk))
		ctx := t.Context()
		c := withResources(t, r)
		if _, err := r.Revoke(ctx, "web", "app", c.ID); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			jobs, err := r.ClaimErasures(ctx, 10, time.Minute)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("attempt %d: %+v %v", i+1, jobs, err)
			}
			if err := r.FinishErasure(ctx, jobs[0], errors.New("policy denied")); err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Hour)
		}
		status, _ := r.Erasures(ctx, c.ID)
		if status[0].Status != ErasureFailed || status[0].Reason != "policy denied" || status[0].Attempts != 3 {
			t.Errorf("after three failures: %+v", status[0])
		}
		if due, _ := r.ClaimErasures(ctx, 10, time.Minute); len(due) != 0 {
			t.Error("a failed erasure is claimed again")
		}
	})
}

func TestExpiryQueuesErasures(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		r, _ := mustOpen(t, b, erasureOptions(clk))
		ctx := t.Context()
		c := withResources(t, r)
		clk.Add(719 * time.Hour)
		if jobs, _ := r.ClaimErasures(ctx, 10, time.Minute); len(jobs) != 0 {
			t.Fatal("erasing before expiry")
		}
		clk.Add(time.Hour)
		jobs, err := r.ClaimErasures(ctx, 10, time.Minute)
		if err != nil || len(jobs) != 1 || jobs[0].ConsentID != c.ID {
			t.Fatalf("after expiry: %+v %v", jobs, err)
		}
	})
}

// A revocation the audit log cannot record stores nothing, erasures included.
func TestRevocationHookFailureQueuesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		hooks := &hookLog{}
		o := erasureOptions(clk)
		o.Hook = hooks.hook
		r, _ := mustOpen(t, b, o)
		ctx := t.Context()
		c := withResources(t, r)
		hooks.fail = errors.New("audit disk full")
		if _, err := r.Revoke(ctx, "web", "app", c.ID); !errors.Is(err, ErrHook) {
			t.Fatalf("revoke: %v", err)
		}
		if status, _ := r.Erasures(ctx, c.ID); len(status) != 1 || status[0].Status != ErasureUnavailable {
			t.Errorf("erasures after a failed revocation: %+v", status)
		}
		if jobs, _ := r.ClaimErasures(ctx, 10, time.Minute); len(jobs) != 0 {
			t.Errorf("claimable after a failed revocation: %+v", jobs)
		}
	})
}
