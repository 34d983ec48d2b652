package main

import "syscall"

// workerAttrs make the dry-run worker die with the gateway: an orphan would go
// on replaying with its memory and a core.
func workerAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
