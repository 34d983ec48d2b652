package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, log io.Writer) error {
	fs := flag.NewFlagSet("vulndb", flag.ContinueOnError)
	repo := fs.String("repo", "", "a golang/vulndb git repository: a clone or a bare git directory")
	rev := fs.String("rev", "HEAD", "the commit whose data/osv is taken")
	modules := fs.String("modules", "", "file of module paths to keep entries for, one a line (- for standard input); stdlib and toolchain are always kept")
	out := fs.String("out", "", "the .tar.gz to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *repo == "" || *modules == "" || *out == "" || fs.NArg() > 0 {
		return errors.New("usage: vulndb -repo DIR [-rev REV] -modules FILE -out snapshot.tar.gz")
	}
	var r io.Reader = stdin
	if *modules != "-" {
		f, err := os.Open(*modules)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	paths, err := readModules(r)
	if err != nil {
		return fmt.Errorf("%s: %w", *modules, err)
	}
	src, err := ReadRepo(*repo, *rev)
	if err != nil {
		return err
	}
	snap := src.Select(paths)
	data, err := snap.Archive()
	if err != nil {
		return err
	}
	if err := writeFile(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(log, "vulndb: %d of %d entries (%d modules listed) from golang/vulndb %s (%s): %s, %d bytes\n",
		len(snap.Entries), len(src.Entries), len(paths), snap.Commit, snap.Date.Format("2006-01-02"), *out, len(data))
	return nil
}

// readModules reads module paths, one a line; blank lines and # comments are
// skipped, and a line may carry a version after the path (go list -m all).
func readModules(r io.Reader) ([]string, error) {
	var paths []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("no module paths")
	}
	return paths, nil
}

// writeFile replaces path through a temporary file beside it, so an interrupted
// run leaves the previous snapshot in place.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
