// Package admin is the admin listener's API: consents, the policy in service,
// metrics, readiness, and the audit log's head, export, tail and snapshot, each
// for the roles identity.Require lets in. It holds no gateway state of its own.
package admin
