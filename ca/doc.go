// Package ca is the internal certificate authority: an embedded step-ca that
// issues app, auditor and admin certificates and serves ACME. Only the `ca`
// and `dev` commands use it, so the gateway's build carries none of step-ca.
package ca
