// Package certs runs the internal CA (an embedded smallstep step-ca), obtains the
// gateway's serving certificates from it over ACME (certmagic), and loads, checks and
// reloads the client certificates and CA bundles of vendors (I.CA, PostSignum, IČO).
// It never logs key material; callers get errors that name what is missing.
package certs
