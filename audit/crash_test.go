package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	crashEnvPath = "AUDIT_CRASH_CHILD_PATH"
	crashEnvSeed = "AUDIT_CRASH_CHILD_SEED"
)

// TestMain runs the test binary as the crash child when TestCrashDurability
// starts it with crashEnvPath set.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnvPath); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild is the process TestCrashDurability kills: it appends from eight
// goroutines, printing "seq hash" for every record Append confirmed, until killed.
func crashChild(path string) {
	seed, err := hex.DecodeString(os.Getenv(crashEnvSeed))
	if err != nil {
		fmt.Println("seed:", err)
		os.Exit(1)
	}
	l, err := Open(path, Options{Node: "crash", SigningKey: ed25519.NewKeyFromSeed(seed),
		CheckpointEvery: 50, CheckpointInterval: time.Hour})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				r, err := l.Append(context.Background(), sampleRecord(w*1_000_000+i))
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error:", err)
				} else {
					fmt.Fprintln(out, r.Seq, r.Hash)
				}
				out.Flush() // a line is printed only after Append returned
				mu.Unlock()
			}
		}()
	}
	select {} // until SIGKILL
}

// Records Append confirmed in strict mode survive the process being killed (SIGKILL,
// no Close, no final checkpoint): after each of two crashes the file verifies, holds
// every confirmed record with the hash Append returned, and the next Open continues
// the chain. (A kill leaves the page cache alone, so this proves the commit happened
// before Append returned, not that the disk honours fsync.)
func TestCrashDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	confirmed := map[uint64]string{}
	for round := range 2 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvSeed+"="+hex.EncodeToString(seed))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it has confirmed 300 records this round, or after 60 s.
		timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			seqText, hash, ok := strings.Cut(line, " ")
			seq, err := strconv.ParseUint(seqText, 10, 64)
			if !ok || err != nil {
				if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "open:") {
					t.Errorf("round %d: child: %s", round, line)
				}
				continue
			}
			confirmed[seq] = hash
			if n++; n == 300 {
				cmd.Process.Kill()
			}
		}
		timer.Stop()
		cmd.Wait() // the kernel drops the child's lock with it
		if n < 300 {
			t.Fatalf("round %d: the child confirmed only %d records", round, n)
		}

		rep, err := VerifyDB(path, pub)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d records confirmed in total, file head %d, %d unvouched", round, len(confirmed), rep.Head.Seq, rep.Unvouched)
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			for seq, hash := range confirmed {
				if v := b.Get(seqKey(seq)); v == nil || lenient(v).Hash != hash {
					t.Errorf("round %d: confirmed record %d is lost or changed", round, seq)
				}
			}
			return nil
		})
		db.Close()
	}
	// A clean Open and Close after the crashes vouches for everything.
	l, err := Open(path, Options{Node: "after", SigningKey: ed25519.NewKeyFromSeed(seed)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDB(path, pub, RequireVouched()); err != nil {
		t.Fatal(err)
	}
}
