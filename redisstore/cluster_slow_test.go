package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// TestClusterSlowServer: on Redis Cluster a Revoke reads CLUSTER SLOTS to
// name its master's stream (the first time, and when its map is older
// than it may be). A cluster that answers more slowly than the watch's
// silence bound, but within the caller's context and the client's
// timeouts (a loaded machine), must not fail the write: that reading is
// part of the write and bounded like the write's own commands. Every
// master is paused (CLIENT PAUSE ALL: nothing answers, then everything
// does) for longer than WatchSilenceBound while a new Store writes for
// the first time, then while it writes after idling past the age its map
// may have, and while Streams reads the map.
func TestClusterSlowServer(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	pause := redisstore.WatchSilenceBound + 500*time.Millisecond
	timeout := 4 * pause // the client's and the caller's, well above the pause
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: cluster.Addrs(), ContextTimeoutEnabled: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
	})
	t.Cleanup(func() { client.Close() })
	// The client knows the cluster already (an application's client has
	// served other calls): what is slow is the Store's own reading.
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))

	pauseAll := func() time.Time {
		t.Helper()
		for _, addr := range cluster.Addrs() {
			admin := redis.NewClient(&redis.Options{Addr: addr})
			err := admin.Do(t.Context(), "client", "pause", pause.Milliseconds(), "all").Err()
			admin.Close()
			if err != nil {
				t.Fatalf("CLIENT PAUSE on %s: %v", addr, err)
			}
		}
		return time.Now()
	}
	slow := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		paused := pauseAll()
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		if err := call(ctx); err != nil {
			t.Fatalf("%s with every master paused for %s (context and client timeouts %s): %v", what, pause, timeout, err)
		}
		t.Logf("%s answered %s after the pause began", what, time.Since(paused).Round(time.Millisecond))
	}
	exp := time.Now().Add(time.Hour)
	slow("the first Revoke of a Store", func(ctx context.Context) error { return s.Revoke(ctx, "first", exp) })
	// Idle past the age a write's map of streams may have: the next
	// write reads the map again first.
	time.Sleep(redisstore.StreamMapStaleAge + 100*time.Millisecond)
	slow("a Revoke after idling", func(ctx context.Context) error { return s.Revoke(ctx, "idle", exp) })
	slow("Streams", func(ctx context.Context) error { _, err := s.Streams(ctx); return err })
	for _, jti := range []string{"first", "idle"} {
		if ok, err := s.IsRevoked(t.Context(), jti); err != nil || !ok {
			t.Errorf("IsRevoked(%q) = %v, %v after its Revoke returned nil", jti, ok, err)
		}
	}
}
