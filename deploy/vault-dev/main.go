// Command vault is the Vault server the integration tests and `consentgate dev
// --vault` run. It lives in its own module so the product's go.mod stays small;
// deploy/scripts/build-vault.sh builds it once into .cache/bin/vault.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
