// Package certs loads and checks the client certificates consentgate presents to
// vendors (I.CA, PostSignum, IČO), and issues certificates for the internal and dev
// PKI. It never logs key material; callers get errors that name what is missing.
package certs
