package testserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// A test gets its own redis-server, closed when the test ends.
func ExampleRedis() {
	var t *testing.T // the *testing.T of the test
	s := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	_ = s.Addr() // give this to redis.NewClient

	// Simulate a crash, then bring the same server back on the same port.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Benchmarks and programs start and close servers themselves.
func ExampleStartMemcached() {
	s, err := testserver.StartMemcached(context.Background(), "-m", "16")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	fmt.Println("memcached at", s.Addr())
}
