// Package secrets is where consentgate gets the values apps must never hold: API
// keys, client secrets, vendor certificates, its own keys. A Provider (Vault KV v2
// in production, a file in dev) resolves "path#key"; errors name the reference, never the value.
package secrets
