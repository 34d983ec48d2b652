// Package certs is certificates at run time: the gateway's serving certificates
// over ACME (certmagic), the client certificates and CA bundles of vendors (I.CA,
// PostSignum, IČO) loaded, checked and reloaded, the CA hierarchy files and the dev PKI.
// It never logs key material; callers get errors that name what is missing.
package certs
