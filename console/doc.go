// Package console is the web console on the admin listener (/console/): pages
// for auditors and security teams, rendered on the server from the same APIs as
// the CLI, behind the admin listener's mTLS, with every change confirmed and audited.
//
// One file per page: timeline.go (the timeline and a record), person.go,
// consents.go, policy.go (revisions, diffs, dry runs), vendors.go and
// integrity.go; console.go holds what every page shares (the layout, the
// security headers, the audit record of an action, the one-at-a-time slots)
// and csrf.go the forms' guard. A dry run loads code an admin uploaded, so
// console.go's Options.DryRun runs it elsewhere: the gateway gives a child
// process (cmd/consentgate/dryrun.go) that calls policy.DryRun.
package console
