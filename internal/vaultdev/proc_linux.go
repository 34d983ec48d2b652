package vaultdev

import "syscall"

// childAttrs makes the dev server die with the process that started it, so an
// interrupted test run leaves no Vault behind.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
