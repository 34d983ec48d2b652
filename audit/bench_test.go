package audit

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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
