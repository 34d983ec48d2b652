package audit

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestInReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOptions(t)
		o.ReserveBytes = 100 << 20
		l, path := MustOpen(t, o)
		var free atomic.Int64
		var fail atomic.Bool
		var asked string
		l.reserve.free = func(dir string) (int64, error) {
			asked = dir
			if fail.Load() {
				return 0, errors.New("statfs: input/output error")
			}
			return free.Load(), nil
		}
		free.Store(101 << 20)
		if l.InReserve() {
			t.Fatal("101 MiB free is outside a 100 MiB reserve")
		}
		if asked != filepath.Dir(path) {
			t.Errorf("free space asked of %q, want the log's directory %q", asked, filepath.Dir(path))
		}
		free.Store(99 << 20)
		if l.InReserve() {
			t.Error("the answer was read again before reserveCheckEvery passed")
		}
		time.Sleep(reserveCheckEvery)
		if !l.InReserve() {
			t.Error("99 MiB free is within a 100 MiB reserve")
		}
		fail.Store(true)
		time.Sleep(reserveCheckEvery)
		free.Store(1 << 40)
		if !l.InReserve() {
			t.Error("unreadable free space must count as within the reserve")
		}
	})
}

func TestReserveOptions(t *testing.T) {
	for _, tc := range []struct {
		set  int64
		want int64
	}{{0, defaultReserveBytes}, {-1, 0}, {1 << 30, 1 << 30}} {
		o := testOptions(t)
		o.ReserveBytes = tc.set
		l, _ := MustOpen(t, o)
		if l.reserve.bytes != tc.want {
			t.Errorf("ReserveBytes %d: reserve %d, want %d", tc.set, l.reserve.bytes, tc.want)
		}
		if tc.want == 0 && l.InReserve() {
			t.Error("with no reserve nothing is within it")
		}
	}
	// The real file system: no disk has an exabyte free.
	o := testOptions(t)
	o.ReserveBytes = 1 << 60
	if l, _ := MustOpen(t, o); !l.InReserve() {
		t.Error("an exabyte reserve on a real disk is not reported as reached")
	}
}
