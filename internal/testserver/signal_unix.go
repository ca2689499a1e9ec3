//go:build unix

package testserver

import "syscall"

// The signals Pause and Resume send.
var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
