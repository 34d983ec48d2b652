package configs

import "embed"

// FS holds the shipped configuration files and policies: `consentgate dev` runs
// from it, so a fresh clone needs nothing on disk.
//
//go:embed consentgate.yaml dev.yaml vendors/*.yaml policies/*.rego policies/*.yaml
var FS embed.FS
