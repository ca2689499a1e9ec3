//go:build linux

package e2e

import "syscall"

// sysProcAttr makes the kernel SIGKILL the demo when the thread that
// started it dies, so a test binary killed by its timeout leaves no demo
// listening behind. Go ends a thread only when a goroutine exits while
// locked to it, which this test does not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
