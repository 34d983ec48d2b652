package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/logsink"
)

// serveUntilReady runs `serve` with args until its ready line, then stops it
// (the final checkpoint is written) and returns its log.
func serveUntilReady(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &logsink.Buffer{}, &logsink.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), stdout, stderr) }()
	ready := regexp.MustCompile(`ready gateway=https://\S+`)
	for deadline := time.Now().Add(30 * time.Second); !ready.MatchString(stdout.String()); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("serve stopped before it was ready: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line; stderr:\n%s", stderr.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	return stderr.String()
}

// auditNodes exports dir/audit.db and returns the export header's node and the
// set of nodes its records carry.
func auditNodes(t *testing.T, dir string) (header string, records map[string]int) {
	t.Helper()
	exp := filepath.Join(dir, "node-check.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	f, err := os.Open(exp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records = map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 0; sc.Scan(); line++ {
		var v struct {
			Node string `json:"node"`
			Seq  uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("export line %d: %v", line+1, err)
		}
		if line == 0 {
			header = v.Node
			continue
		}
		if v.Seq > 0 {
			records[v.Node]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, records
}

// Each StatefulSet replica shares one configuration file and gets its node from
// --node or CONSENTGATE_NODE (the chart sets it to the pod name): the flag wins
// over the environment, which wins over the file. The node is what the log and
// every audit record carry.
func TestServeNode(t *testing.T) {
	cases := []struct {
		name, flag, env string
		fileNode        bool
		want            string
	}{
		{"file", "", "", true, "test-1"},
		{"environment over file", "", "consentgate-1", true, "consentgate-1"},
		{"flag over environment", "consentgate-2", "consentgate-1", true, "consentgate-2"},
		{"environment, file without node", "", "consentgate-0", false, "consentgate-0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, file, _ := writeServeConfig(t)
			if !c.fileNode {
				removeNode(t, file)
			}
			t.Setenv(configs.NodeEnv, c.env)
			args := []string{"--config", file}
			if c.flag != "" {
				args = append(args, "--node", c.flag)
			}
			log := serveUntilReady(t, args...)
			if !strings.Contains(log, `msg="consentgate started" node=`+c.want+" ") {
				t.Errorf("the start line does not name node %s:\n%s", c.want, log)
			}
			header, records := auditNodes(t, dir)
			if header != c.want {
				t.Errorf("export header node %q, want %q", header, c.want)
			}
			if len(records) != 1 || records[c.want] == 0 {
				t.Errorf("audit records carry the nodes %v, want only %s", records, c.want)
			}
		})
	}
}

func TestServeRefusesBadNode(t *testing.T) {
	cases := []struct {
		name, flag, env string
		fileNode        bool
		want            string
	}{
		{"bad flag", "a b", "", true, `--node: node "a b"`},
		{"bad environment", "", "pod/0", true, `$CONSENTGATE_NODE: node "pod/0"`},
		{"no node anywhere", "", "", false, ":1: node: is required (or set by --node or CONSENTGATE_NODE)"},
		{"placeholder left in the environment", "", "$(POD_NAME)", true, `$CONSENTGATE_NODE: node "$(POD_NAME)"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, file, _ := writeServeConfig(t)
			if !c.fileNode {
				removeNode(t, file)
			}
			t.Setenv(configs.NodeEnv, c.env)
			args := []string{"serve", "--config", file}
			if c.flag != "" {
				args = append(args, "--node", c.flag)
			}
			err := run(context.Background(), args, &logsink.Buffer{}, &logsink.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "audit.db")); err == nil {
				t.Error("the audit log was opened although the node was refused")
			}
		})
	}
	// A good flag wins over a bad environment value, which is then never used.
	_, file, _ := writeServeConfig(t)
	t.Setenv(configs.NodeEnv, "pod/0")
	if _, err := loadConfig(file, "consentgate-3"); err != nil {
		t.Errorf("a good --node did not win over a bad environment value: %v", err)
	}
}

// removeNode deletes the node: line, as the chart's shared file does.
func removeNode(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(data), "node: test-1\n", "", 1)
	if without == string(data) {
		t.Fatal("the test config has no node: test-1 line")
	}
	writeTestFile(t, file, without)
}
