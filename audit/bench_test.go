package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppendStrict measures durable appends from 1, 16 and 256 concurrent callers
// with the default batch size and delay, and how many commits (fsyncs) each record
// cost: group commit shares one among everyone who waited for it.
func BenchmarkAppendStrict(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, _ := MustOpen(b, Options{Node: "bench", SigningKey: newKey(b)})
			rec := sampleRecord(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Batches)/float64(st.Records), "batches/record")
		})
	}
}

// BenchmarkVerify measures how fast an auditor's machine checks an export.
func BenchmarkVerify(b *testing.B) {
	l, _ := MustOpen(b, Options{Node: "bench", SigningKey: newKey(b)})
	appendConcurrently(b, l, 64, 160)
	var export bytes.Buffer
	if err := l.Export(context.Background(), &export, Filter{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(export.Len()))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(export.Bytes()), l.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10240)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendLatency is what a strict-mode record adds to a request: the time
// one Append takes with 1 and 16 concurrent callers, as p50 and p99, next to the
// fdatasync latency of a 4 KiB append in the same folder (the physical floor).
func BenchmarkAppendLatency(b *testing.B) {
	fsync := fsyncLatency(b, 200)
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, _ := MustOpen(b, Options{Node: "bench", SigningKey: newKey(b)})
			rec := sampleRecord(1)
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Go(func() {
					var mine []time.Duration
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						if _, err := l.Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(fsync[len(fsync)/2].Microseconds()), "fsync-p50-µs")
			b.ReportMetric(float64(fsync[len(fsync)*99/100].Microseconds()), "fsync-p99-µs")
		})
	}
}

// fsyncLatency times n appends of 4 KiB, each followed by fdatasync.
func fsyncLatency(b *testing.B, n int) []time.Duration {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}
