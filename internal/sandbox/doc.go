// Package sandbox runs local HTTPS stand-ins for the five vendors (kb, airbank, biometric, finid,
// banqware): each enforces its vendor's documented rules and records every request, so tests can
// prove what the gateway sent; a Fault makes one hang, reset, answer garbage or show a wrong certificate.
package sandbox
