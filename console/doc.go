// Package console is the web console on the admin listener (/console/): pages
// for auditors and security teams, rendered on the server from the same APIs as
// the CLI, behind the admin listener's mTLS, with every change confirmed and audited.
package console
