// Command vulnerable proves that `make vulncheck` can fail: it calls
// golang.org/x/text/language.ParseAcceptLanguage at v0.3.7, which GO-2022-1059
// (CVE-2022-32149, fixed in v0.3.8) lists, so govulncheck must report it as
// called. deploy/scripts/vulncheck.sh scans this module with the same database
// as the product and fails unless it does.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
)

func main() {
	tags, _, err := language.ParseAcceptLanguage(os.Getenv("ACCEPT_LANGUAGE"))
	fmt.Println(tags, err)
}
