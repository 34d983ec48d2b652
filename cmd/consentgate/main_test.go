package main

import (
	"os"
	"testing"

	"github.com/consentgate/consentgate/internal/pgdev"
)

// TestMain lets a test run this very binary as the consentgate command (with
// CONSENTGATE_RUN_MAIN=1), so process-level tests such as the crash loop need no
// separate build.
func TestMain(m *testing.M) {
	if os.Getenv("CONSENTGATE_RUN_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	pgdev.CloseShared()
	os.Exit(code)
}
