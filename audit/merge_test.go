package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Two replicas write interleaved in time; the merge is one timeline with every
// call of both, in time order, each line exactly as exported.
func TestMergeOrdersReplicasByTime(t *testing.T) {
	ctx := context.Background()
	// One clock for both replicas, so their records interleave.
	clk := newClock()
	var logs []*Log
	for _, node := range []string{"node-b", "node-a"} {
		o := testOptions(t)
		o.Node, o.Now, o.CheckpointEvery = node, clk.Now, 3
		l, _ := MustOpen(t, o)
		logs = append(logs, l)
	}
	for i := range 10 {
		l := logs[i%3%2] // an uneven interleaving: b a b b a b b a b b
		if _, err := l.Append(ctx, Record{Kind: KindIntent, RequestID: "req-" + string(rune('0'+i)), Vendor: "kb"}); err != nil {
			t.Fatal(err)
		}
	}
	var exports []*bytes.Buffer
	var all string
	for _, l := range logs {
		var b bytes.Buffer
		if err := l.Export(ctx, &b, Filter{}); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(bytes.NewReader(b.Bytes()), l.PublicKey()); err != nil {
			t.Fatal(err)
		}
		all += b.String()
		exports = append(exports, &b)
	}
	var out bytes.Buffer
	n, err := Merge(&out, exports[0], exports[1])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if n != 10 || len(lines) != 10 {
		t.Fatalf("merged %d records (%d lines), want 10:\n%s", n, len(lines), out.String())
	}
	var prev time.Time
	for i, line := range lines {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if want := "req-" + string(rune('0'+i)); r.RequestID != want || r.Kind == KindCheckpoint {
			t.Errorf("line %d: %s %s, want %s", i, r.Kind, r.RequestID, want)
		}
		if r.Time.Before(prev) {
			t.Errorf("line %d goes back in time", i)
		}
		prev = r.Time
		if !strings.Contains(all, line+"\n") {
			t.Errorf("line %d is not a line of an export: %s", i, line)
		}
	}
}

func TestMergeRefusesWhatIsNotAnExport(t *testing.T) {
	for name, in := range map[string]string{
		"empty":            "",
		"not a record":     `{"format":"x"}` + "\n" + `{"hello":1}` + "\n",
		"no final newline": `{"format":"x"}` + "\n" + `{"seq":1,"kind":"intent","time":"2026-11-21T10:00:00Z"}`,
		"not json at all":  `{"format":"x"}` + "\n" + "seq=1\n",
	} {
		if _, err := Merge(&bytes.Buffer{}, strings.NewReader(in)); err == nil {
			t.Errorf("%s: merged", name)
		}
	}
}
