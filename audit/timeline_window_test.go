package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Pages of a time window, read with small pages and scan bounds, across
// sealed segments (a sealing checkpoint in two files) and after the oldest
// segment was pruned, are exactly the window's records on the node; and once
// the window is read, no further page is offered: records are stamped in
// order, so nothing older than From can match.
func TestTimelineWindowsProperty(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	l, path := MustOpen(t, o)
	appendN(t, l, 900)
	all := recordsByOne(t, l)
	segs, err := Segments(SegmentDir(path))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	// Prune the oldest segment.
	os.Remove(segs[0].Path)
	oldest := segs[1].First
	type win struct{ from, to int } // indices into all; -1: open
	wins := []win{{-1, -1}, {100, 700}, {0, 1}, {int(oldest), int(oldest) + 1}, {int(segs[1].Last) - 2, int(segs[1].Last) + 2},
		{int(segs[2].First) - 1, int(segs[2].First) + 1}, {850, 899}, {-1, 0}, {-1, 50}, {600, -1}}
	for _, w := range wins {
		for _, lim := range []int{1, 7, 50} {
			for _, scan := range []int{1, 13, 400} {
				q := Query{Limit: lim, MaxScan: scan}
				if w.from >= 0 {
					q.From = all[w.from].Time
				}
				if w.to >= 0 {
					q.To = all[w.to].Time
				}
				var want []uint64
				for i := len(all) - 1; i >= 0; i-- {
					r := all[i]
					if r.Seq >= oldest && q.inWindow(r.Time) {
						want = append(want, r.Seq)
					}
				}
				var got []uint64
				pages, emptyAfter := 0, 0
				for ; pages < 5000; pages++ {
					p, err := l.Timeline(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range p.Records {
						got = append(got, r.Seq)
					}
					if len(got) == len(want) && p.Next != 0 && len(p.Records) == 0 {
						emptyAfter++
					}
					if p.Next == 0 {
						break
					}
					if p.Next > q.Before && q.Before != 0 {
						t.Fatalf("window %v: Next %d not below Before %d", w, p.Next, q.Before)
					}
					q.Before = p.Next
				}
				if !slices.Equal(got, want) {
					t.Errorf("window %v limit %d scan %d: got %d %v…, want %d %v…", w, lim, scan, len(got), head(got), len(want), head(want))
				}
				if emptyAfter > 0 && w.from >= 0 && lim == 50 && scan == 13 {
					t.Errorf("window %v limit %d scan %d: %d empty pages (each 'stopped at its read bound: older records may match') after the window's last record, reading down to the log's start",
						w, lim, scan, emptyAfter)
				}
			}
		}
	}
	_ = time.Second
}

// A live export with the archived segments before it is one chain from record
// 1; segments still on the node are not read twice; a segment of another log
// is refused.
func TestExportWithArchived(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	l, path := MustOpen(t, o)
	appendN(t, l, 900)
	segs, err := Segments(SegmentDir(path))
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	store := t.TempDir()
	moved := filepath.Join(store, filepath.Base(segs[0].Path))
	if err := os.Rename(segs[0].Path, moved); err != nil {
		t.Fatal(err)
	}
	// segs[1] is archived too, but still on the node: read once, from the node.
	copied := filepath.Join(store, filepath.Base(segs[1].Path))
	data, _ := os.ReadFile(segs[1].Path)
	os.WriteFile(copied, data, 0o600)
	var b bytes.Buffer
	if err := l.ExportWithArchived(context.Background(), &b, Filter{}, []string{moved, copied}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(&b, l.PublicKey())
	if err != nil || rep.Start != 1 || rep.Head.Seq != l.Head().Seq {
		t.Fatalf("the export with the archive: start %d head %d (log head %d), %v", rep.Start, rep.Head.Seq, l.Head().Seq, err)
	}
	if first, err := l.OldestOnNode(); err != nil || first != segs[1].First {
		t.Errorf("OldestOnNode = %d, %v; want %d", first, err, segs[1].First)
	}
	other, _ := closedLog(t, 10, 5)
	foreign := filepath.Join(store, segmentName(1, 5))
	data, _ = os.ReadFile(other)
	os.WriteFile(foreign, data, 0o600)
	if err := l.ExportWithArchived(context.Background(), io.Discard, Filter{}, []string{foreign}); !errors.Is(err, ErrNotLog) {
		t.Errorf("a segment of another log: %v", err)
	}
}
