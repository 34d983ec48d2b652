package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 14 finding 7: a truncated audit.db crashed `audit verify` (SIGSEGV or a
// bbolt assertion) and the gateway at start. Each open now ends with an error
// naming the file and what is wrong. The opens run in a child process: on the
// old code they crash it, which must fail this test, not end the test binary.
func TestTruncatedLogIsAClearError(t *testing.T) {
	if path := os.Getenv("AUDIT_TRUNCATED_FILE"); path != "" {
		openTruncated(path)
		return
	}
	o := testOptions(t)
	path := filepath.Join(t.TempDir(), "audit.db")
	l := mustOpenPath(t, path, o)
	appendN(t, l, 3000)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt grows a file ahead of its data: what its last transaction needs.
	meta, ok := parseMeta(full)
	if !ok {
		t.Fatal("no meta page")
	}
	need := int(meta.pgid) * int(meta.pageSize)
	for _, size := range []int{len(full) - 4096, need, need - 4096, need / 2, 5 * 4096, 2*4096 + 100, 100} {
		cut := filepath.Join(t.TempDir(), "audit.db")
		if err := os.WriteFile(cut, full[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestTruncatedLogIsAClearError$")
		cmd.Env = append(os.Environ(), "AUDIT_TRUNCATED_FILE="+cut, "AUDIT_TRUNCATED_NODE="+o.Node,
			"AUDIT_TRUNCATED_SEED="+hex.EncodeToString(o.SigningKey.(ed25519.PrivateKey).Seed()))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("cut to %d of %d bytes: the opens crashed: %v\n%s", size, len(full), err, tail(out))
			continue
		}
		for _, what := range []string{"verify", "open", "export"} {
			line := lineOf(string(out), what+": ")
			switch {
			case size >= need && line != what+": ok":
				t.Errorf("cut to %d bytes, past the %d in use, %s: %q, want ok", size, need, what, line)
			case size < need && (!strings.Contains(line, cut) || !strings.Contains(line, "corrupt")):
				t.Errorf("cut to %d of the %d bytes in use, %s: %q, want an error naming the file", size, need, what, line)
			}
		}
	}
}

// openTruncated is the child: every way the file is opened, each outcome on a
// line of its own.
func openTruncated(path string) {
	seed, _ := hex.DecodeString(os.Getenv("AUDIT_TRUNCATED_SEED"))
	key := ed25519.NewKeyFromSeed(seed)
	_, err := VerifyDB(path, key.Public().(ed25519.PublicKey))
	println("verify: " + errText(err))
	l, err := Open(path, Options{Node: os.Getenv("AUDIT_TRUNCATED_NODE"), SigningKey: key})
	if err == nil {
		l.Close()
	}
	println("open: " + errText(err))
	err = ExportFile(context.Background(), path, io.Discard, Filter{})
	println("export: " + errText(err))
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func tail(b []byte) string {
	s := string(b)
	return s[max(0, len(s)-1500):]
}

// A file is checked for consistency once while it is unchanged, and again
// after any change, also one whose modification time was put back (cp -p,
// rsync -t, touch -r): unchecked, a damaged page would panic a reader.
func TestConsistencyCheckedAgainAfterAChange(t *testing.T) {
	for name, mtime := range map[string]func(before time.Time) time.Time{
		"modification time moved": func(time.Time) time.Time { return time.Now().Add(time.Second) },
		"modification time kept":  func(before time.Time) time.Time { return before },
	} {
		t.Run(name, func(t *testing.T) {
			path, _ := closedLog(t, 300, 100)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			db, err := openReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Page 3 onwards holds the tree: zero one of its pages in place.
			if _, err := f.WriteAt(make([]byte, 4096), 4*4096); err != nil {
				t.Fatal(err)
			}
			f.Close()
			m := mtime(info.ModTime())
			os.Chtimes(path, m, m)
			if db, err := openReadOnly(path); err == nil {
				db.Close()
				t.Fatal("a file damaged since its last check opened without an error")
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("the damaged file: %v", err)
			}
		})
	}
}
