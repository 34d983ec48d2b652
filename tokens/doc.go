// Package tokens replaces personal values with tokens that apps store and send
// back instead, and keeps the values sealed under a data key per consent, so
// that revoking the consent (destroying its key) makes every token of it void.
package tokens
