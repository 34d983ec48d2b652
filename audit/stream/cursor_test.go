package stream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cursor starts at 0, keeps what was saved across a new Cursor on the same
// file, starts again at 0 for another log (a new audit file), and names the
// file when it cannot be read as a cursor rather than resending everything.
func TestCursor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "streams", "siem.cursor")
	c := NewCursor(path)
	if n, err := c.Load("log-a"); n != 0 || err != nil {
		t.Fatalf("a new cursor: %d, %v", n, err)
	}
	if err := c.Save("log-a", 4711); err != nil {
		t.Fatal(err)
	}
	if n, err := NewCursor(path).Load("log-a"); n != 4711 || err != nil {
		t.Errorf("reloaded: %d, %v", n, err)
	}
	if n, err := NewCursor(path).Load("log-b"); n != 0 || err != nil {
		t.Errorf("for another log: %d, %v", n, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".cursor-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := c.Load("log-a"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a damaged cursor: %v", err)
	}
}
