// Package consent is the registry of end-user consents (in bbolt, or in PostgreSQL shared by
// replicas) and its admin API. Subjects are kept only as HMAC-SHA256 under a key it is given;
// every change passes a hook (the audit log) before it commits, and none happens if it fails.
package consent
