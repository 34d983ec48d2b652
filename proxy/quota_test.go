package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
)

func TestQuotaFollowsTheVendorsHeaders(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	q := newQuota(configs.Quota{})
	if ok, _ := q.admit("web", now); !ok {
		t.Fatal("no limit configured, nothing said by the vendor: refused")
	}
	if _, known := q.snapshot(); known {
		t.Fatal("remaining known before the vendor said anything")
	}
	h := http.Header{}
	h.Set("X-Rate-Limit-Remaining", "3")
	h["X-RateLimit-Remaining-glClientIdentity-Minute"] = []string{"2"}
	q.observe(h, 200, now)
	if rem, known := q.snapshot(); !known || rem != 2 {
		t.Fatalf("remaining %d %v, want the smaller of the two headers, 2", rem, known)
	}
	h.Set("X-Rate-Limit-Remaining", "0")
	h.Set("X-Rate-Limit-Reset", "17")
	q.observe(h, 200, now)
	ok, r := q.admit("web", now.Add(time.Second))
	if ok || r.wait != 16*time.Second {
		t.Fatalf("spent budget: admit %v, wait %s, want refused for 16s", ok, r.wait)
	}
	if ok, _ := q.admit("web", now.Add(18*time.Second)); !ok {
		t.Fatal("still refused after the reset")
	}
	// A 429 with Retry-After, whatever the other headers say.
	q.observe(http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests, now)
	if ok, r := q.admit("web", now); ok || r.wait != 30*time.Second {
		t.Fatalf("after a 429: %v %s", ok, r.wait)
	}
	if got := retryAfterSeconds(1500 * time.Millisecond); got != "2" {
		t.Errorf("Retry-After %s, want 2 (rounded up)", got)
	}
}

func TestQuotaTokenBuckets(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	q := newQuota(configs.Quota{RequestsPerSecond: 10, Burst: 3, PerAppRequestsPerSecond: 1, PerAppBurst: 2})
	for i := 0; i < 2; i++ {
		if ok, _ := q.admit("a", now); !ok {
			t.Fatalf("app a call %d refused within its burst", i)
		}
	}
	if ok, r := q.admit("a", now); ok || r.wait != time.Second {
		t.Fatalf("app a beyond its burst: %v %s", ok, r.wait)
	}
	if ok, _ := q.admit("b", now); !ok {
		t.Fatal("app b refused: apps have their own buckets")
	}
	if ok, _ := q.admit("c", now); ok {
		t.Fatal("the vendor's burst of 3 was exceeded")
	}
}

// A call the vendor's budget refuses costs the app nothing: once the vendor
// bucket refills, the app still has its own burst.
func TestQuotaVendorRefusalSparesTheAppBudget(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	q := newQuota(configs.Quota{RequestsPerSecond: 1, Burst: 1, PerAppRequestsPerSecond: 0.001, PerAppBurst: 2})
	if ok, _ := q.admit("a", now); !ok {
		t.Fatal("first call refused")
	}
	for range 5 {
		if ok, _ := q.admit("a", now); ok {
			t.Fatal("the vendor bucket is empty, yet a call went through")
		}
	}
	// The vendor bucket refills in a second; the app's second token is intact.
	if ok, _ := q.admit("a", now.Add(time.Second)); !ok {
		t.Error("the app's budget was spent by calls the vendor budget refused")
	}
}

// consentgate's own 429 carries the rate-limit headers Air Bank documents for
// its 429, so an app written against the vendor handles both alike: the budget
// that is spent, nothing remaining, and whole seconds until a call is admitted.
func TestQuotaRefusalHeaders(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	type said struct {
		h      http.Header
		status int
	}
	tests := []struct {
		name     string
		profile  configs.Quota
		admitted int    // calls that take the budget first
		vendor   []said // what the vendor said, in order, at now
		at       time.Duration
		// want: Retry-After, X-Rate-Limit-Limit ("" for absent),
		// X-Rate-Limit-Remaining and X-Rate-Limit-Reset.
		retry, limit, remaining, reset string
	}{
		{name: "the vendor said the budget is spent",
			vendor: []said{{http.Header{"X-Rate-Limit-Limit": {"3"}, "X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {"17"}}, 200}},
			at:     time.Second, retry: "16", limit: "3", remaining: "0", reset: "16"},
		{name: "the limit of the per-API budget that ran out, in Go's spelling",
			vendor: []said{{http.Header{"X-Rate-Limit-Limit": {"100"}, "X-Rate-Limit-Remaining": {"40"},
				"X-Ratelimit-Limit-Glclientidentity-Minute": {"5"}, "X-Ratelimit-Remaining-Glclientidentity-Minute": {"0"}}, 200}},
			retry: "60", limit: "5", remaining: "0", reset: "60"},
		{name: "of budgets equally spent, the smaller",
			vendor: []said{{http.Header{"X-Rate-Limit-Limit": {"100"}, "X-Rate-Limit-Remaining": {"0"},
				"X-Ratelimit-Limit-Glclientidentity-Minute": {"5"}, "X-Ratelimit-Remaining-Glclientidentity-Minute": {"0"}}, 200}},
			retry: "60", limit: "5", remaining: "0", reset: "60"},
		{name: "the per-API budget in the vendor's spelling",
			vendor: []said{{http.Header{"X-RateLimit-Limit-glClientIdentity-Minute": {"7"}, "X-RateLimit-Remaining-glClientIdentity-Minute": {"0"},
				"X-Rate-Limit-Reset": {"9"}}, 200}},
			retry: "9", limit: "7", remaining: "0", reset: "9"},
		{name: "a 429 with only Retry-After keeps the limit stated before",
			vendor: []said{
				{http.Header{"X-Rate-Limit-Limit": {"10"}, "X-Rate-Limit-Remaining": {"7"}}, 200},
				{http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests}},
			retry: "30", limit: "10", remaining: "0", reset: "30"},
		{name: "no limit stated anywhere: none invented",
			vendor: []said{{http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests}},
			retry:  "30", limit: "", remaining: "0", reset: "30"},
		{name: "no limit stated by the vendor: the profile's vendor bucket",
			profile: configs.Quota{RequestsPerSecond: 100, Burst: 8},
			vendor:  []said{{http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests}},
			retry:   "30", limit: "8", remaining: "0", reset: "30"},
		{name: "the profile's vendor bucket",
			profile: configs.Quota{RequestsPerSecond: 0.5, Burst: 4}, admitted: 4,
			retry: "2", limit: "4", remaining: "0", reset: "2"},
		{name: "the app's bucket",
			profile: configs.Quota{RequestsPerSecond: 100, Burst: 100, PerAppRequestsPerSecond: 0.25, PerAppBurst: 2}, admitted: 2,
			retry: "4", limit: "2", remaining: "0", reset: "4"},
		{name: "a bucket partly refilled waits only for the rest of a token",
			profile: configs.Quota{RequestsPerSecond: 0.1, Burst: 1}, admitted: 1, at: 4 * time.Second,
			retry: "6", limit: "1", remaining: "0", reset: "6"},
		{name: "less than a second rounds up to one",
			profile: configs.Quota{RequestsPerSecond: 10, Burst: 1}, admitted: 1,
			retry: "1", limit: "1", remaining: "0", reset: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQuota(tt.profile)
			for i := range tt.admitted {
				if ok, _ := q.admit("web", now); !ok {
					t.Fatalf("call %d refused within the budget", i)
				}
			}
			for _, s := range tt.vendor {
				q.observe(s.h, s.status, now)
			}
			ok, r := q.admit("web", now.Add(tt.at))
			if ok {
				t.Fatal("admitted with the budget spent")
			}
			h := http.Header{}
			r.header(h)
			for _, c := range [][2]string{{"Retry-After", tt.retry}, {"X-Rate-Limit-Limit", tt.limit},
				{"X-Rate-Limit-Remaining", tt.remaining}, {"X-Rate-Limit-Reset", tt.reset}} {
				if got := h.Get(c[0]); got != c[1] {
					t.Errorf("%s: %q, want %q", c[0], got, c[1])
				}
			}
		})
	}
}
