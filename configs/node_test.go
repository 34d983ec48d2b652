package configs

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckNode(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"consentgate-0", true},
		{"gw-prague-1", true},
		{"n", true},
		{"Node_1.eu", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"-leading", false},
		{"trailing-", false},
		{"with space", false},
		{"slash/node", false},
		{"quote\"node", false},
		{"new\nline", false},
		{"__POD_NAME__", false},
		{"čeština", false},
	} {
		if err := CheckNode(c.name); (err == nil) != c.ok {
			t.Errorf("CheckNode(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestLoadWithNode(t *testing.T) {
	withoutNode := strings.Replace(goodMain, "node: n1\n", "", 1)
	cases := []struct {
		name, main, node string
		want             string // the node, or a substring of the error
		fails            bool
	}{
		{"file's node", goodMain, "", "n1", false},
		{"override wins over the file", goodMain, "consentgate-2", "consentgate-2", false},
		{"override fills a file without node", withoutNode, "consentgate-0", "consentgate-0", false},
		{"no node anywhere", withoutNode, "", "main.yaml:1: node: is required (or set by --node or CONSENTGATE_NODE)", true},
		{"bad node in the file", strings.Replace(goodMain, "node: n1", "node: a b", 1), "", `main.yaml:1: node: node "a b": use 1 to 63`, true},
		{"bad override", goodMain, "pod/1", `node "pod/1": use 1 to 63`, true},
		{"override does not hide other errors", strings.Replace(goodMain, "provider: file", "provider: etcd", 1), "consentgate-0", `secrets.provider: "etcd" is unknown`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "main.yaml"), c.main)
			write(t, filepath.Join(dir, "v.yaml"), goodVendor)
			cfg, err := LoadWithNode(filepath.Join(dir, "main.yaml"), c.node)
			if c.fails {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want one containing %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Node != c.want {
				t.Errorf("node %q, want %q", cfg.Node, c.want)
			}
		})
	}
}
