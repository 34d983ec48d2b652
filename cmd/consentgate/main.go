// Command consentgate is the compliance egress gateway: `consentgate dev` runs the
// whole system on one machine, `consentgate serve` runs a gateway from a config file.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv("CONSENTGATE_CPUPROFILE"))
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentgate:", err)
		os.Exit(1)
	}
}

// startCPUProfile writes a Go CPU profile of the whole run to file, when file
// is set (CONSENTGATE_CPUPROFILE; `make bench` uses it with -profile), and the
// allocation profile next to it (file + ".allocs"): allocation is what the
// garbage collector's share of the CPU follows. Both are complete once the
// process stops on SIGINT or SIGTERM.
func startCPUProfile(file string) (stop func()) {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentgate: CPU profile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if a, err := os.Create(file + ".allocs"); err == nil {
			pprof.Lookup("allocs").WriteTo(a, 0)
			a.Close()
		}
	}
}

// run is main without the process: tests call it with their own context and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
