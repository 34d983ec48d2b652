// Command bench measures consentgate against what a team would use instead,
// the direct vendor call and nginx as an mTLS reverse proxy, with one load
// generator on loopback; `make bench` runs it and writes bench/RESULTS.md.
//
// Every server under test is a child process: the upstream (this binary
// started again), nginx, and `consentgate serve` built from ./cmd/consentgate.
// The load generator is the only thing in this process, so the CPU and memory
// read from /proc/<pid> for a target are that server's alone; an in-process
// gateway would share its CPU and heap with the load generator, and
// getrusage cannot tell them apart. The cost is a build of consentgate per
// run (cached by Go) and a generated configuration, which the benchmark
// checks with the same loader `serve` uses before starting it.
//
// What is shared by every target: the upstream (the kb vendor's contract:
// I.CA-style company seal with IČO, API key, bearer token; HTTP/1.1 and
// HTTP/2), the dev PKI generated into the work folder, and the load
// generator's HTTP/1.1 keep-alive connections, one per concurrent client.
// The work folder (audit logs included) is under ./.cache by default so that
// the fsync being measured is the real disk's, not a tmpfs.
package main
