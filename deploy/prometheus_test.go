package deploy

import (
	"os/exec"
	"testing"

	"github.com/consentgate/consentgate/internal/tier"
)

// The alert rules shipped for operators are valid Prometheus rules, and fire
// (and stay quiet) as their unit tests say, checked by promtool itself.
func TestAlertRules(t *testing.T) {
	tier.Needs(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/consentgate-rules.yml"},
		{"test", "rules", "prometheus/consentgate-rules.test.yml"},
	} {
		if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
