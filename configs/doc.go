// Package configs holds consentgate's shipped configuration (consentgate.yaml,
// dev.yaml, vendors/*.yaml) embedded in the binary, and loads and validates any
// configuration file so that every error names its file, line and field.
package configs
