package proxy

import (
	"maps"
	"math"
	"net/http"
	"slices"
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

	mu        sync.Mutex
	remaining int // -1 while the vendor has not said
	// limit is the budget the vendor last stated beside the remaining count it
	// reported; 0 while it has not said.
	limit        int
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

// quotaRefusal is why admit turned a call away: how long until a call would be
// admitted, and the budget that is spent (0 when nobody stated one).
type quotaRefusal struct {
	wait  time.Duration
	limit int
}

// header sets on consentgate's 429 the headers Air Bank sets on its own, so an
// app written against the vendor's 429 handles consentgate's alike. The limit is
// left out when neither the vendor nor the profile states one: an invented
// budget would mislead the app's pacing.
func (r quotaRefusal) header(h http.Header) {
	secs := retryAfterSeconds(r.wait)
	h.Set("Retry-After", secs)
	if r.limit > 0 {
		h.Set("X-Rate-Limit-Limit", strconv.Itoa(r.limit))
	}
	h.Set("X-Rate-Limit-Remaining", "0")
	h.Set("X-Rate-Limit-Reset", secs)
}

// admit takes one call from the budget, or says why not and how long to wait.
func (q *quota) admit(app string, now time.Time) (bool, quotaRefusal) {
	q.mu.Lock()
	blocked, limit := q.blockedUntil, q.limit
	q.mu.Unlock()
	if now.Before(blocked) {
		// The vendor said so; without its stated limit, the profile's model
		// of its budget is the best answer there is.
		if limit == 0 && q.vendor != nil {
			limit = q.vendor.Burst()
		}
		return false, quotaRefusal{wait: blocked.Sub(now), limit: limit}
	}
	var appLimiter *rate.Limiter
	if q.appRate > 0 {
		l, ok := q.apps.Load(app)
		if !ok {
			l, _ = q.apps.LoadOrStore(app, rate.NewLimiter(q.appRate, q.appB))
		}
		appLimiter = l.(*rate.Limiter)
		if appLimiter.TokensAt(now) < 1 {
			return false, quotaRefusal{wait: refill(appLimiter, now), limit: q.appB}
		}
	}
	if q.vendor != nil && !q.vendor.AllowN(now, 1) {
		return false, quotaRefusal{wait: refill(q.vendor, now), limit: q.vendor.Burst()}
	}
	// The app's token is spent only once the vendor's budget let the call
	// through: a call the vendor limit refuses costs the app nothing.
	if appLimiter != nil && !appLimiter.AllowN(now, 1) {
		return false, quotaRefusal{wait: refill(appLimiter, now), limit: q.appB}
	}
	return true, quotaRefusal{}
}

// refill is how long until l holds a whole token again: a bucket partly
// refilled needs only the rest of one.
func refill(l *rate.Limiter, now time.Time) time.Duration {
	return time.Duration(max(1-l.TokensAt(now), 0) / float64(l.Limit()) * float64(time.Second))
}

// observe reads the vendor's rate-limit headers: Air Bank's X-Rate-Limit-Remaining,
// -Limit and -Reset (seconds), its per-API X-RateLimit-Remaining-<API>-Minute and
// -Limit-<API>-Minute, and Retry-After on a 429.
func (q *quota) observe(h http.Header, status int, now time.Time) {
	remaining, limit := tightest(h)
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
	if limit > 0 {
		q.limit = limit
	}
	if remaining == 0 {
		q.blockedUntil = now.Add(max(reset, time.Second))
	}
}

// tightest finds the vendor's remaining-budget header with the least left
// (-1 when there is none) and the limit stated beside it (0 when not stated):
// that is the budget a refusal is about. Of budgets equally spent, the
// smaller stated one wins.
func tightest(h http.Header) (remaining, limit int) {
	remaining = -1
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk != "x-rate-limit-remaining" && !(strings.HasPrefix(lk, "x-ratelimit-remaining-") && strings.HasSuffix(lk, "-minute")) {
			continue
		}
		lim, _ := strconv.Atoi(strings.TrimSpace(headerFold(h, strings.Replace(lk, "remaining", "limit", 1))))
		for _, v := range vs {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				continue
			}
			if remaining < 0 || n < remaining || (n == remaining && lim > 0 && (limit == 0 || lim < limit)) {
				remaining, limit = n, max(lim, 0)
			}
		}
	}
	return remaining, limit
}

// headerFold is the first value of the header name in any spelling: the
// vendor's per-API names ("X-RateLimit-Limit-glClientIdentity-Minute") may
// arrive as sent or in Go's canonical form.
func headerFold(h http.Header, name string) string {
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
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

// QuotaState is where a vendor's budget stands, for the console's vendors page.
type QuotaState struct {
	Vendor string
	// PerSecond and Burst are the profile's own budget (0: none).
	PerSecond float64
	Burst     int
	// Remaining and Limit are what the vendor last said (-1 and 0 while it has
	// not); BlockedUntil is set while it has said none is left.
	Remaining, Limit int
	BlockedUntil     time.Time
}

// Quotas is every vendor's quota state, by vendor id.
func (g *Gateway) Quotas() []QuotaState {
	vendors := g.vendorsNow()
	now := g.now()
	var out []QuotaState
	for _, id := range slices.Sorted(maps.Keys(vendors)) {
		q := vendors[id].quota
		s := QuotaState{Vendor: id}
		if q.vendor != nil {
			s.PerSecond, s.Burst = float64(q.vendor.Limit()), q.vendor.Burst()
		}
		q.mu.Lock()
		s.Remaining, s.Limit = q.remaining, q.limit
		if now.Before(q.blockedUntil) {
			s.BlockedUntil = q.blockedUntil
		}
		q.mu.Unlock()
		out = append(out, s)
	}
	return out
}
