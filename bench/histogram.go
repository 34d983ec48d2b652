package main

import (
	"math"
	"math/bits"
	"time"
)

// A log-linear histogram in the HDR style: every power of two of nanoseconds is
// split into subBuckets equal buckets, so a recorded value is known to within
// 1/subBuckets of itself (0.8%) from 1 ns up to maxRecordable, in 31 KiB and
// with no allocation per value. Averages hide tails; percentiles are what the
// report shows.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // 128
	// maxExponent bounds the values kept apart: 2^37 ns is 137 s, longer than
	// any request timeout of the load generator. Larger values are clamped.
	maxExponent   = 37
	bucketCount   = subBuckets + (maxExponent-subBucketBits+1)*subBuckets
	maxRecordable = int64(1)<<(maxExponent+1) - 1
)

// histogram counts latencies. It is not safe for concurrent use: each load
// worker records into its own and the results are merged.
type histogram struct {
	counts   [bucketCount]uint64
	total    uint64
	min, max int64
}

func newHistogram() *histogram { return &histogram{min: math.MaxInt64} }

// bucketOf is the index of the bucket holding v (ns). Values below subBuckets
// have a bucket each; above, the top subBucketBits+1 bits of v pick the bucket.
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1 // v is in [2^exp, 2^(exp+1))
	shift := exp - subBucketBits
	sub := int(v>>shift) - subBuckets // in [0, subBuckets)
	return subBuckets + shift*subBuckets + sub
}

// bucketRange is the lowest value of bucket i and its width.
func bucketRange(i int) (low, width int64) {
	if i < subBuckets {
		return int64(i), 1
	}
	shift := (i - subBuckets) / subBuckets
	sub := (i - subBuckets) % subBuckets
	return int64(subBuckets+sub) << shift, int64(1) << shift
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > maxRecordable {
		v = maxRecordable
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds every count of o to h.
func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// count is how many values were recorded.
func (h *histogram) count() uint64 { return h.total }

// percentile returns the nearest-rank q-th percentile (0 < q ≤ 100): the value
// at rank ⌈q/100·n⌉ of the sorted values, as the middle of its bucket, kept
// within the recorded minimum and maximum, which are exact (the first and last
// ranks). Zero when nothing was recorded.
func (h *histogram) percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.total)))
	rank = max(1, min(rank, h.total))
	switch rank {
	case h.total:
		return time.Duration(h.max)
	case 1:
		return time.Duration(h.min)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			v := low + width/2
			return time.Duration(max(h.min, min(v, h.max)))
		}
	}
	return time.Duration(h.max)
}
