package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
)

func TestWriteCSV(t *testing.T) {
	l, _ := MustOpen(t, Options{Node: "n", SigningKey: newKey(t)})
	yes := true
	r := sampleRecord(1)
	r.Allow, r.Reasons, r.Disclosed = &yes, []string{"consent active", "purpose covered"}, []string{"names", "surname"}
	if _, err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var export, out bytes.Buffer
	if err := l.Export(context.Background(), &export, Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&export, &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 || rows[0][0] != "seq" || rows[1][0] != "1" {
		t.Fatalf("rows %q", rows)
	}
	col := func(name string) string {
		for i, h := range rows[0] {
			if h == name {
				return rows[1][i]
			}
		}
		return "<none>"
	}
	if col("allow") != "true" || col("reasons") != "consent active;purpose covered" || col("disclosed") != "names;surname" || col("hash") == "" {
		t.Errorf("row %q", rows[1])
	}
}
