// Package policy decides, with an embedded OPA engine, whether an app may make a
// vendor call for a purpose under an end-user consent, and which fields it may
// see. Any failure to decide is a deny with a fixed reason: it fails closed.
package policy
