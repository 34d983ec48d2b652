package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "k8s-schemas:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("k8s-schemas", flag.ContinueOnError)
	swagger := fs.String("swagger", "", "the Kubernetes api/openapi-spec/swagger.json")
	out := fs.String("out", "", "folder to write the schemas to; replaced as a whole")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *swagger == "" || *out == "" || fs.NArg() > 0 {
		return errors.New("usage: k8s-schemas -swagger swagger.json -out DIR")
	}
	spec, err := os.ReadFile(*swagger)
	if err != nil {
		return err
	}
	res, err := Convert(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", *swagger, err)
	}
	if err := writeAll(*out, res.Files); err != nil {
		return err
	}
	fmt.Fprintf(log, "k8s-schemas: %d schemas in %s\n", len(res.Files), *out)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(log, "k8s-schemas: no schema for recursive kinds (kubeconform will report them missing): %s\n", strings.Join(res.Skipped, ", "))
	}
	return nil
}

// writeAll writes files into a fresh folder beside dir, then swaps it in, so
// that an interrupted run never leaves a half-written schema folder that a later
// run would take for finished.
func writeAll(dir string, files map[string][]byte) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
