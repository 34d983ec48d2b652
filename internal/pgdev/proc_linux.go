package pgdev

import "syscall"

// childAttrs runs a child as owner (nil: as this process's user) and makes it
// die with the process that started it, so an interrupted test run leaves no
// server behind.
func childAttrs(owner *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner, Pdeathsig: syscall.SIGKILL}
}
