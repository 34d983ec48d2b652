package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// nearestRank is the reference: the value at rank ⌈q/100·n⌉ of the sorted values.
func nearestRank(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// The histogram's percentiles match a sorted slice's to within one part in 256
// (half a bucket), over distributions shaped like latencies and over the edges.
func TestHistogramPercentilesMatchSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func() int64
		n    int
	}{
		{"constant", func() int64 { return 250_000 }, 1000},
		{"small exact values", func() int64 { return rng.Int64N(128) }, 5000},
		{"uniform 0.1-2 ms", func() int64 { return 100_000 + rng.Int64N(1_900_000) }, 20000},
		{"lognormal tail", func() int64 { return int64(math.Exp(12 + 1.5*rng.NormFloat64())) }, 50000},
		{"bimodal with rare 50 ms stalls", func() int64 {
			if rng.IntN(1000) == 0 {
				return 50_000_000 + rng.Int64N(1_000_000)
			}
			return 300_000 + rng.Int64N(50_000)
		}, 30000},
		{"single value", func() int64 { return 123_456_789 }, 1},
		{"up to a minute", func() int64 { return rng.Int64N(int64(time.Minute)) }, 10000},
	}
	quantiles := []float64{0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 100}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHistogram()
			vals := make([]int64, c.n)
			for i := range vals {
				vals[i] = c.gen()
				h.record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			if h.count() != uint64(c.n) {
				t.Fatalf("count %d, want %d", h.count(), c.n)
			}
			for _, q := range quantiles {
				want := nearestRank(vals, q)
				got := int64(h.percentile(q))
				if diff := math.Abs(float64(got - want)); diff > float64(want)/256+0.5 {
					t.Errorf("p%v = %d, reference %d (off by %.3f%%)", q, got, want, 100*diff/float64(want))
				}
			}
			if got := int64(h.percentile(100)); got != vals[len(vals)-1] {
				t.Errorf("p100 = %d, want the maximum %d exactly", got, vals[len(vals)-1])
			}
		})
	}
}

// Merging per-worker histograms gives the percentiles of all their values.
func TestHistogramMergeEqualsOneHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := newHistogram()
	parts := []*histogram{newHistogram(), newHistogram(), newHistogram(), newHistogram()}
	var vals []int64
	for i := 0; i < 40000; i++ {
		v := int64(math.Exp(13 + rng.NormFloat64()))
		vals = append(vals, v)
		all.record(time.Duration(v))
		parts[i%3].record(time.Duration(v)) // the fourth stays empty
	}
	merged := newHistogram()
	for _, p := range parts {
		merged.merge(p)
	}
	slices.Sort(vals)
	if merged.count() != all.count() {
		t.Fatalf("merged count %d, want %d", merged.count(), all.count())
	}
	for _, q := range []float64{50, 99, 99.9} {
		if merged.percentile(q) != all.percentile(q) {
			t.Errorf("p%v: merged %v, single %v", q, merged.percentile(q), all.percentile(q))
		}
		want := nearestRank(vals, q)
		if got := int64(merged.percentile(q)); math.Abs(float64(got-want)) > float64(want)/256 {
			t.Errorf("p%v: merged %d, reference %d", q, got, want)
		}
	}
}

// Out-of-range values are clamped rather than lost, and an empty histogram
// answers zero.
func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.percentile(99) != 0 {
		t.Fatalf("empty histogram p99 = %v, want 0", h.percentile(99))
	}
	h.record(-time.Second)
	h.record(1000 * time.Hour)
	if h.count() != 2 {
		t.Fatalf("count %d, want 2", h.count())
	}
	if got := h.percentile(50); got != 0 {
		t.Errorf("p50 = %v, want 0 (the negative value clamped)", got)
	}
	if got := h.percentile(100); got != time.Duration(maxRecordable) {
		t.Errorf("p100 = %v, want the clamp %v", got, time.Duration(maxRecordable))
	}
	// Every bucket's range starts where the previous one ends.
	for i := 1; i < bucketCount; i++ {
		low, _ := bucketRange(i)
		plow, pwidth := bucketRange(i - 1)
		if low != plow+pwidth {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, low, plow+pwidth)
		}
		if bucketOf(low) != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", low, bucketOf(low), i)
		}
	}
	if bucketOf(maxRecordable) >= bucketCount {
		t.Fatalf("the largest value falls outside the %d buckets", bucketCount)
	}
}
