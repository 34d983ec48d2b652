//go:build !linux

package main

import "syscall"

// workerAttrs: only Linux kills a child when its parent dies.
func workerAttrs() *syscall.SysProcAttr { return nil }
