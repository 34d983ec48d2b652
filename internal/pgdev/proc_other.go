//go:build unix && !linux

package pgdev

import "syscall"

func childAttrs(owner *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner}
}
