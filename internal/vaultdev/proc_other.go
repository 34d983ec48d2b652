//go:build !linux

package vaultdev

import "syscall"

func childAttrs() *syscall.SysProcAttr { return nil }
