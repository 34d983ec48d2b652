// Package consent is the registry of end-user consents apps have collected, kept in bbolt or
// in a PostgreSQL database that gateway replicas share, and its admin API. Subjects are kept
// only as HMAC-SHA256 under a key the registry is given; every change passes a hook (the
// audit log) before it commits, and none happens if it fails.
package consent
