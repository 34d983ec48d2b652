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
	ok, wait := q.admit("web", now.Add(time.Second))
	if ok || wait != 16*time.Second {
		t.Fatalf("spent budget: admit %v, wait %s, want refused for 16s", ok, wait)
	}
	if ok, _ := q.admit("web", now.Add(18*time.Second)); !ok {
		t.Fatal("still refused after the reset")
	}
	// A 429 with Retry-After, whatever the other headers say.
	q.observe(http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests, now)
	if ok, wait := q.admit("web", now); ok || wait != 30*time.Second {
		t.Fatalf("after a 429: %v %s", ok, wait)
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
	if ok, wait := q.admit("a", now); ok || wait != time.Second {
		t.Fatalf("app a beyond its burst: %v %s", ok, wait)
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
