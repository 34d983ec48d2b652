// Package sandbox runs local HTTPS stand-ins for the five vendors consentgate serves (kb, airbank,
// biometric, finid, banqware). Each enforces its vendor's documented certificate and credential
// rules and records every request, so tests can prove what the gateway attached and what it sent.
package sandbox
