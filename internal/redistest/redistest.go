// Package redistest holds what the tests of the packages built on Redis
// share: a TestMain for a binary with one shared redis-server, clients that
// close when their test ends, and key prefixes unique within the binary, so
// tests sharing a server never see each other's keys.
package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// Main runs the tests of m, then closes shared (stopping its server, if a
// test started it) and exits with the tests' status. It silences go-redis's
// own log: the fault tests kill servers on purpose, and a line per failed
// redial would bury real failures in the output.
func Main(m *testing.M, shared *testserver.Shared) {
	redis.SetLogger(quietLogger{})
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Client returns a client of the server at addr whose reads and writes
// follow the context's deadline; it is closed when the test ends.
func Client(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// ClusterClient is Client for a Redis Cluster reached through addrs.
func ClusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

var prefixes atomic.Int64

// Prefix returns a key prefix no other call in this test binary returns,
// naming the test for whoever reads the keys.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("test:%d:%s:", prefixes.Add(1), t.Name())
}

// CLIPath returns the path of redis-cli: the test skips without it, or
// fails under CI=true.
func CLIPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli not found (apt-get install redis-tools): %v", err)
		}
		t.Skipf("redis-cli not found: %v", err)
	}
	return path
}

// CLI feeds script to redis-cli's standard input against the server at
// addr, one command a line, on one connection (so MULTI ... EXEC is one
// transaction), and returns its output. The test fails if redis-cli fails
// or any reply is an error or a MOVED redirection (redis-cli without -c
// does not follow it).
func CLI(t testing.TB, addr, script string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(CLIPath(t), "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "ERR") || strings.Contains(string(out), "MOVED") {
		t.Fatalf("redis-cli: %v:\n%s", err, out)
	}
	return string(out)
}
