//go:build !linux

package testserver

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: servers are still
// stopped by Close, but may outlive a test binary that is killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }
