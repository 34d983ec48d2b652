package audit

import (
	"bufio"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Merge writes the records of several exports, one per replica, as one JSONL
// stream ordered by time (then node, then sequence), each line exactly as its
// replica stored it. Headers, elided stubs and checkpoints are left out: the
// merged stream is a timeline to read, not a chain. Verify each export first;
// Merge only checks that every line is a record. Each export is read once, in
// step with the others, so memory does not grow with the size of the logs.
func Merge(w io.Writer, exports ...io.Reader) (int, error) {
	var h mergeHeap
	for i, r := range exports {
		src := &mergeSource{index: i, lr: newLineReader(r)}
		if _, err := src.lr.next(); err != nil { // the header
			return 0, fmt.Errorf("export %d: reading the header: %w", i+1, err)
		}
		ok, err := src.advance()
		if err != nil {
			return 0, err
		}
		if ok {
			h = append(h, src)
		}
	}
	heap.Init(&h)
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	for h.Len() > 0 {
		src := h[0]
		bw.Write(src.line)
		if err := bw.WriteByte('\n'); err != nil {
			return n, fmt.Errorf("writing merged export: %w", err)
		}
		n++
		ok, err := src.advance()
		if err != nil {
			return n, err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("writing merged export: %w", err)
	}
	return n, nil
}

// mergeSource is one export being merged, positioned on its next record.
type mergeSource struct {
	index  int
	lr     *lineReader
	lineNo int
	line   []byte
	key    struct {
		Seq  uint64    `json:"seq"`
		Time time.Time `json:"time"`
		Node string    `json:"node"`
		Kind string    `json:"kind"`
	}
}

// advance moves to the next record to merge; false at the end of the export.
func (s *mergeSource) advance() (bool, error) {
	for {
		line, err := s.lr.next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		s.lineNo++
		if err != nil {
			return false, fmt.Errorf("export %d, line %d: %w", s.index+1, s.lineNo+1, err)
		}
		s.key.Kind = ""
		if err := json.Unmarshal(line, &s.key); err != nil || s.key.Kind == "" {
			return false, fmt.Errorf("export %d, line %d: not an audit record", s.index+1, s.lineNo+1)
		}
		if s.key.Kind == KindElided || s.key.Kind == KindCheckpoint {
			continue
		}
		s.line = append(s.line[:0], line...)
		return true, nil
	}
}

type mergeHeap []*mergeSource

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := &h[i].key, &h[j].key
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	if a.Seq != b.Seq {
		return a.Seq < b.Seq
	}
	return h[i].index < h[j].index
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeSource)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
