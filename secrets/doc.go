// Package secrets is where consentgate gets the values apps must never hold: API
// keys, client secrets, vendor certificates. A Provider resolves "path#key"
// references; errors name the reference, never the value.
package secrets
