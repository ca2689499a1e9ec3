//go:build unix

package memcachestore_test

import (
	"syscall"
	"testing"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// stop freezes the test's own server with SIGSTOP, so that it accepts
// connections but never answers, and resumes it when the test ends.
func stop(t *testing.T, srv *testserver.Server) {
	t.Helper()
	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(srv.PID(), syscall.SIGCONT) })
}
