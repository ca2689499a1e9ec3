//go:build !unix

package testserver

import "os"

// Outside Unix a process cannot be paused: Pause and Resume fail with an
// error saying so.
var sigStop, sigCont os.Signal
