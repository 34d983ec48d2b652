module github.com/consentgate/consentgate/deploy/vault-dev

go 1.26.0

require github.com/hashicorp/vault v1.21.0

// Copied from vault v1.21.0's own go.mod (its non-local replaces); without them
// the build does not resolve.
replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
