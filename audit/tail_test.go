package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Tail long-polls: with nothing new it waits exactly its wait, and a record
// committed meanwhile ends the wait at once. Time is the synctest bubble's.
func TestTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := MustOpen(t, Options{Node: "n", SigningKey: newKey(t)})
		for i := 0; i < 3; i++ {
			if _, err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		last, err := l.Tail(context.Background(), &buf, 1, 100, time.Second)
		if err != nil || last != 3 || strings.Count(buf.String(), "\n") != 2 || !strings.Contains(buf.String(), `"seq":2`) {
			t.Fatalf("tail after 1: last %d err %v\n%s", last, err, buf.String())
		}
		// Nothing new: the long poll waits, then returns nothing.
		buf.Reset()
		start := time.Now()
		last, err = l.Tail(context.Background(), &buf, 3, 100, 300*time.Millisecond)
		if err != nil || last != 3 || buf.Len() != 0 || time.Since(start) != 300*time.Millisecond {
			t.Fatalf("empty tail: last %d err %v %q after %s", last, err, buf.String(), time.Since(start))
		}
		// A record committed during the wait is returned at once.
		go func() {
			time.Sleep(150 * time.Millisecond) // virtual time: the bubble's clock
			l.Append(context.Background(), sampleRecord(9))
		}()
		buf.Reset()
		start = time.Now()
		last, err = l.Tail(context.Background(), &buf, 3, 100, 5*time.Second)
		if err != nil || last != 4 || !strings.Contains(buf.String(), `"seq":4`) || time.Since(start) >= time.Second {
			t.Fatalf("tail during wait: last %d err %v %q after %s", last, err, buf.String(), time.Since(start))
		}
	})
}
