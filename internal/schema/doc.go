// Package schema generates the JSON Schemas of consentgate.yaml and of vendor
// profiles from the Go types in configs, for editors' completion and CI
// validation. docs/schema holds the result; a test fails when it drifts.
package schema
