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
	pid := srv.PID()
	if pid <= 0 {
		// kill(0, …) would signal this test binary's whole process group.
		t.Fatalf("server is not running (pid %d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
}
