// Package refusal is how consentgate says no: a typed value with a stable kind,
// a status and fixed text, answered as RFC 9457 problem+json in one way by every
// listener. The kinds are the documented list apps switch on.
package refusal
