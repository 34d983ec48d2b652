package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Unmatched OAuth2 callbacks (no state, or a state no authorization was
// started with) need no credential to send: anyone who can reach the gateway
// listener can make them. Each is still recorded in the audit log, but only at
// unmatchedRate, so that a flood cannot fill the disk or take the log's fsyncs
// from real calls; the ones beyond are counted, and the next record says how
// many went unrecorded before it. Callbacks that match an authorization are
// bounded by the starts apps made with their certificates and always recorded.
const (
	unmatchedRate  = 5 // records per second
	unmatchedBurst = 20
)

type unmatchedCallbacks struct {
	limiter    *rate.Limiter
	unrecorded atomic.Int64 // since the last record
	lastWarn   atomic.Int64 // unix nanoseconds
}

func newUnmatchedCallbacks() *unmatchedCallbacks {
	return &unmatchedCallbacks{limiter: rate.NewLimiter(unmatchedRate, unmatchedBurst)}
}

// admit reports whether this unmatched callback gets its audit record. When it
// does, detail gains the count of those that did not since the last one.
func (u *unmatchedCallbacks) admit(detail map[string]string) bool {
	if !u.limiter.Allow() {
		u.unrecorded.Add(1)
		return false
	}
	if n := u.unrecorded.Swap(0); n > 0 {
		detail["unrecorded_before"] = strconv.FormatInt(n, 10)
	}
	return true
}

// warnDue reports whether to log the flood now: at most every 10 seconds.
func (u *unmatchedCallbacks) warnDue(now time.Time) bool {
	last := u.lastWarn.Load()
	return now.UnixNano()-last >= int64(10*time.Second) && u.lastWarn.CompareAndSwap(last, now.UnixNano())
}

// Refused vendor callbacks (no route, a source outside the vendor's networks,
// a missing certificate, secret or URL token) need no credential either. They
// are recorded at a rate per source address and in all; the rest are counted,
// and the next record of a refusal says how many went unrecorded before it.
// A flood from one address cannot fill the audit log or crowd out another's.
const (
	refusedPerSource      = 1 // records per second per source address
	refusedPerSourceBurst = 5
	refusedRate           = 20 // records per second in all
	refusedBurst          = 50
	maxNoiseSources       = 10000
)

type refusedCallbacks struct {
	all        *rate.Limiter
	mu         sync.Mutex
	sources    map[string]*rate.Limiter
	unrecorded atomic.Int64
}

func newRefusedCallbacks() *refusedCallbacks {
	return &refusedCallbacks{all: rate.NewLimiter(refusedRate, refusedBurst), sources: map[string]*rate.Limiter{}}
}

// admit reports whether a refusal from source at now gets its audit record,
// and how many refusals went unrecorded since the last one that did.
func (r *refusedCallbacks) admit(source string, now time.Time) (bool, int64) {
	r.mu.Lock()
	l := r.sources[source]
	if l == nil {
		if len(r.sources) >= maxNoiseSources {
			// Forgetting every source at once lets them all start over with
			// their burst; the limit in all still holds.
			clear(r.sources)
		}
		l = rate.NewLimiter(refusedPerSource, refusedPerSourceBurst)
		r.sources[source] = l
	}
	r.mu.Unlock()
	if !l.AllowN(now, 1) || !r.all.AllowN(now, 1) {
		r.unrecorded.Add(1)
		return false, 0
	}
	return true, r.unrecorded.Swap(0)
}
