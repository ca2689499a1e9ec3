//go:build linux

package testserver

import "syscall"

// sysProcAttr makes the kernel SIGKILL the server when the thread that
// started it dies, so a crashed or killed test binary leaves no server
// behind. Go only ends a thread when a goroutine exits while locked to it,
// which our callers do not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
