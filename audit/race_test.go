//go:build race

package audit

// raceEnabled lets the slowest exhaustive test sample under the race detector, which
// makes it ten times slower and has no concurrency to look at in it.
const raceEnabled = true
