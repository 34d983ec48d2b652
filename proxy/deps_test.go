package proxy

import (
	"os/exec"
	"strings"
	"testing"
)

// The gateway's build carries none of the embedded step-ca server (and so none
// of badger, MySQL, cloud KMS clients): only the ca package does, for the ca
// and dev commands.
func TestGatewayCarriesNoCertificateAuthority(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/smallstep/certificates/") || pkg == "github.com/consentgate/consentgate/ca" {
			t.Errorf("proxy depends on %s", pkg)
		}
	}
}
