// Package ca is the internal certificate authority: an embedded step-ca that
// issues app, auditor and admin certificates and serves ACME. Only the `ca`,
// `certs` and `dev` commands use it: the gateway's build carries none of step-ca.
package ca
