package memcachestore_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// newClient returns a client for tests. Its Timeout is generous because CI
// runs many servers and race-instrumented tests on two cores, where a reply
// can take longer than gomemcache's default of 500 ms; a dead server still
// fails at once (connection refused).
func newClient(addrs ...string) *memcache.Client {
	c := memcache.New(addrs...)
	c.Timeout = 5 * time.Second
	c.MaxIdleConns = 16
	return c
}

// statValue reads one counter from the "stats" command of the server at
// addr. gomemcache has no call for it.
func statValue(t testing.TB, addr, name string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(c, "stats\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		line = strings.TrimSpace(line)
		if line == "END" {
			t.Fatalf("stats has no %s", name)
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" && f[1] == name {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("stats %s: %v", name, err)
			}
			return n
		}
	}
}
