// Package tier says which tests the fast tier (`go test -short ./...`) leaves
// to the integration tier (`make test`): those that need a service or a tool
// the fast tier does not assume (Vault, PostgreSQL, curl, busybox).
package tier

import "testing"

// Needs skips t in the fast tier, naming what it needs and which tier runs it.
func Needs(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s: the integration tier (make test) runs it, not go test -short", what)
	}
}
