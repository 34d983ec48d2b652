package audit

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// A timeline read page by page, across sealed segments, is exactly the records
// a filter of the whole log keeps, newest first, each once.
func TestTimelinePagesAcrossSegments(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 64 << 10
	l, path := MustOpen(t, o)
	appendN(t, l, 900)
	if segs, _ := Segments(SegmentDir(path)); len(segs) < 2 {
		t.Fatalf("%d segments sealed, the test needs 2", len(segs))
	}
	all := recordsByOne(t, l)
	for name, q := range map[string]Query{
		"everything":      {},
		"one app":         {App: "loans"},
		"vendor and kind": {Vendor: "kb", Kind: KindOutcome},
		"a time window":   {From: all[100].Time, To: all[700].Time},
		"an operation":    {Operation: "airbank.personalData", Purpose: "kyc-onboarding"},
		"nothing":         {App: "nobody"},
	} {
		t.Run(name, func(t *testing.T) {
			var want []uint64
			for i := len(all) - 1; i >= 0; i-- {
				if q.match(&all[i]) {
					want = append(want, all[i].Seq)
				}
			}
			var got []uint64
			q.Limit = 37
			for pages := 0; ; pages++ {
				p, err := l.Timeline(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Records {
					got = append(got, r.Seq)
				}
				if p.Next == 0 {
					break
				}
				if p.Next >= q.Before && q.Before != 0 || pages > 100 {
					t.Fatalf("page %d does not move on: next %d after before %d", pages, p.Next, q.Before)
				}
				q.Before = p.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages gave %d records %v…, a filter of the export %d %v…", len(got), head(got), len(want), head(want))
			}
		})
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 8)] }

// recordsByOne is the log's records (checkpoints included), oldest first.
func recordsByOne(t *testing.T, l *Log) []Record {
	t.Helper()
	var out []Record
	for seq := uint64(1); seq <= l.Head().Seq; seq++ {
		r, err := l.Record(seq)
		if err != nil {
			t.Fatalf("Record(%d): %v", seq, err)
		}
		if r.Seq != seq {
			t.Fatalf("Record(%d) is record %d", seq, r.Seq)
		}
		out = append(out, r)
	}
	return out
}

// A filter that matches little stops at the scan bound and says where: the
// page is partial, and the next one starts where it stopped.
func TestTimelineScanBound(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	appendN(t, l, 300)
	head := l.Head().Seq
	p, err := l.Timeline(context.Background(), Query{App: "nobody", MaxScan: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 0 || p.Scanned != 100 || !p.Partial || p.Next != head-99 {
		t.Errorf("page = %d records, scanned %d, partial %v, next %d (head %d)", len(p.Records), p.Scanned, p.Partial, p.Next, head)
	}
	p, err = l.Timeline(context.Background(), Query{Outcome: "forwarded", Before: 10})
	if err != nil || len(p.Records) != 0 || p.Next != 0 || p.Partial {
		t.Errorf("the oldest page: %+v, %v", p, err)
	}
	if _, err := l.Record(head + 1); !errors.Is(err, ErrNoRecord) {
		t.Errorf("a record beyond the head: %v", err)
	}
}

// Outcome and refusal filters read the outcome record's details.
func TestTimelineOutcomeFilters(t *testing.T) {
	l, _ := MustOpen(t, testOptions(t))
	for i, d := range []map[string]string{{"outcome": "forwarded"}, {"outcome": "denied", "refusal": "policy-denied"},
		{"outcome": "refused", "refusal": "no-route"}, {"outcome": "failed", "refusal": "audit-unavailable"}} {
		r := sampleRecord(2*i + 1)
		r.Detail = d
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		// An intent naming the same words elsewhere must not match.
		in := sampleRecord(2 * i)
		in.Detail = map[string]string{"policy_input": `{"outcome":"denied","refusal":"no-route"}`}
		if _, err := l.Append(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	for q, want := range map[Query]string{{Outcome: "denied"}: "policy-denied", {Refusal: "no-route"}: "no-route", {Outcome: "failed"}: "audit-unavailable"} {
		p, err := l.Timeline(context.Background(), q)
		if err != nil || len(p.Records) != 1 || p.Records[0].Detail["refusal"] != want {
			t.Errorf("%+v: %d records, %v", q, len(p.Records), err)
		}
	}
}

// A window's end is found by bisection, not by reading down from the head:
// the first page of a window starts at its end, in the active file or in a
// sealed segment, and the pages hold exactly the window's records.
func TestTimelineSeeksTheWindowsEnd(t *testing.T) {
	for _, segBytes := range []int64{0, 64 << 10} {
		o := testOptions(t)
		o.SegmentBytes = segBytes
		l, _ := MustOpen(t, o)
		appendN(t, l, 900)
		all := recordsByOne(t, l)
		for _, w := range [][2]int{{100, 700}, {0, 5}, {850, 899}, {0, 899}} {
			q := Query{From: all[w[0]].Time, To: all[w[1]].Time, Limit: 1000, MaxScan: 200}
			var want, got []uint64
			for i := w[1] - 1; i >= w[0]; i-- {
				want = append(want, all[i].Seq)
			}
			for pages := 0; pages < 20; pages++ {
				p, err := l.Timeline(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if pages == 0 && (len(p.Records) == 0 || p.Records[0].Seq != want[0]) {
					t.Errorf("segments %d, window %v: the first page does not start at the window's end", segBytes, w)
				}
				for _, r := range p.Records {
					got = append(got, r.Seq)
				}
				if p.Next == 0 {
					break
				}
				if len(got) == len(want) && w[0] > 0 {
					t.Errorf("segments %d, window %v: the window is whole, yet the timeline offers older records from %d", segBytes, w, p.Next)
					break
				}
				q.Before = p.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("segments %d, window %v: got %d records %v…, want %d %v…", segBytes, w, len(got), head(got), len(want), head(want))
			}
		}
	}
}
