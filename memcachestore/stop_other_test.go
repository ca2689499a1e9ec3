//go:build !unix

package memcachestore_test

import (
	"testing"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

func stop(t *testing.T, _ *testserver.Server) {
	t.Skip("freezing a server needs SIGSTOP")
}
