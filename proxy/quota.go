package proxy

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/consentgate/consentgate/configs"
)

// quota keeps a vendor's budget: the profile's token buckets (for the vendor and
// for each app), and what the vendor itself last said about its limit. When the
// vendor has said "none left until T", consentgate answers 429 itself until T
// instead of sending a call the vendor would refuse.
type quota struct {
	vendor  *rate.Limiter // nil: no profile limit
	appRate rate.Limit
	appB    int
	apps    sync.Map // app name → *rate.Limiter

	mu           sync.Mutex
	remaining    int // -1 while the vendor has not said
	blockedUntil time.Time
}

func newQuota(q configs.Quota) *quota {
	qu := &quota{remaining: -1}
	if q.RequestsPerSecond > 0 {
		qu.vendor = rate.NewLimiter(rate.Limit(q.RequestsPerSecond), max(q.Burst, 1))
	}
	if q.PerAppRequestsPerSecond > 0 {
		qu.appRate, qu.appB = rate.Limit(q.PerAppRequestsPerSecond), max(q.PerAppBurst, 1)
	}
	return qu
}

// admit takes one call from the budget, or says how long to wait.
func (q *quota) admit(app string, now time.Time) (bool, time.Duration) {
	q.mu.Lock()
	blocked := q.blockedUntil
	q.mu.Unlock()
	if now.Before(blocked) {
		return false, blocked.Sub(now)
	}
	var appLimiter *rate.Limiter
	if q.appRate > 0 {
		l, ok := q.apps.Load(app)
		if !ok {
			l, _ = q.apps.LoadOrStore(app, rate.NewLimiter(q.appRate, q.appB))
		}
		appLimiter = l.(*rate.Limiter)
		if appLimiter.TokensAt(now) < 1 {
			return false, time.Duration(float64(time.Second) / float64(q.appRate))
		}
	}
	if q.vendor != nil && !q.vendor.AllowN(now, 1) {
		return false, time.Duration(float64(time.Second) / float64(q.vendor.Limit()))
	}
	// The app's token is spent only once the vendor's budget let the call
	// through: a call the vendor limit refuses costs the app nothing.
	if appLimiter != nil && !appLimiter.AllowN(now, 1) {
		return false, time.Duration(float64(time.Second) / float64(q.appRate))
	}
	return true, 0
}

// observe reads the vendor's rate-limit headers: Air Bank's X-Rate-Limit-Remaining
// and X-Rate-Limit-Reset (seconds), its per-API X-RateLimit-Remaining-<API>-Minute,
// and Retry-After on a 429.
func (q *quota) observe(h http.Header, status int, now time.Time) {
	remaining := -1
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk == "x-rate-limit-remaining" || (strings.HasPrefix(lk, "x-ratelimit-remaining-") && strings.HasSuffix(lk, "-minute")) {
			for _, v := range vs {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && (remaining < 0 || n < remaining) {
					remaining = n
				}
			}
		}
	}
	reset := time.Minute
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Rate-Limit-Reset"))); err == nil && n >= 0 {
		reset = time.Duration(n) * time.Second
	}
	if status == http.StatusTooManyRequests {
		if d, ok := retryAfter(h.Get("Retry-After"), now); ok {
			reset = d
		}
		remaining = 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if remaining >= 0 {
		q.remaining = remaining
	}
	if remaining == 0 {
		q.blockedUntil = now.Add(max(reset, time.Second))
	}
}

// snapshot is what the policy sees: the vendor's last stated remaining budget.
func (q *quota) snapshot() (remaining int, known bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.remaining, q.remaining >= 0
}

func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retryAfterSeconds is the Retry-After value consentgate sends: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
