package oauth

import (
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Unmatched OAuth2 callbacks (no state, or a state no authorization was
// started with) need no credential to send: anyone who can reach the gateway
// listener can make them. Each is still recorded in the audit log, but only at
// UnmatchedRate, so that a flood cannot fill the disk or take the log's fsyncs
// from real calls; the ones beyond are counted, and the next record says how
// many went unrecorded before it. Callbacks that match an authorization are
// bounded by the starts apps made with their certificates and always recorded.
const (
	UnmatchedRate  = 5 // records per second
	UnmatchedBurst = 20
)

type unmatchedCallbacks struct {
	limiter    *rate.Limiter
	unrecorded atomic.Int64 // since the last record
	lastWarn   atomic.Int64 // unix nanoseconds
}

func newUnmatchedCallbacks() *unmatchedCallbacks {
	return &unmatchedCallbacks{limiter: rate.NewLimiter(UnmatchedRate, UnmatchedBurst)}
}

// admit reports whether this unmatched callback gets its audit record. When it
// does, detail gains the count of those that did not since the last one.
func (u *unmatchedCallbacks) admit(detail map[string]string, now time.Time) bool {
	if !u.limiter.AllowN(now, 1) {
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
