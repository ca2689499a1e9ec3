package redisstore_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// goroutinesIn returns the stacks of the goroutines running code of the
// packages named.
func goroutinesIn(pkgs ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestWatchLeavesNoGoroutine") {
			continue
		}
		for _, p := range pkgs {
			if strings.Contains(g, p) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// TestWatchLeavesNoGoroutine: once Watch has returned, on Cluster (one
// loop per master's stream, a poller of CLUSTER SLOTS, a connection per
// stream), nothing it started is left running, and a client of its own
// is closed.
func TestWatchLeavesNoGoroutine(t *testing.T) {
	cluster := testserver.RedisCluster(t, 3)
	ctx := t.Context()
	s := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(redistest.Prefix(t)))
	if err := s.Revoke(ctx, "x", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	before := len(goroutinesIn("github.com/redis/go-redis"))
	for range 3 {
		w := watchEvents(t, ctx, s, 100, nil)
		w.waitFor("Synced", isKind(blocklist.Synced), 10*time.Second)
		w.stop()
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := goroutinesIn("jwtblocklist/blocklist/redisstore.(*Store).watch", "jwtblocklist/blocklist/redisstore.(*clusterStreams)")
		redis := len(goroutinesIn("github.com/redis/go-redis"))
		if len(left) == 0 && redis <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after Watch returned: %d go-redis goroutines (%d before), and of the watch:\n%s",
				redis, before, strings.Join(left, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
