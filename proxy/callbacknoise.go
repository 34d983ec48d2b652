package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

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
