package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// TestManualClusterSlots: a ClusterClient whose slot map comes from its
// ClusterSlots option (standalone servers sharded by the client, which
// go-redis supports) has no CLUSTER SLOTS to ask. Revoke, Watch and
// Streams take the map from the option, as the client routes by it.
func TestManualClusterSlots(t *testing.T) {
	t.Parallel()
	a, b := testserver.Redis(t), testserver.Redis(t)
	ctx := t.Context()
	client := redis.NewClusterClient(&redis.ClusterOptions{
		ContextTimeoutEnabled: true,
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			return []redis.ClusterSlot{
				{Start: 0, End: 8191, Nodes: []redis.ClusterNode{{Addr: a.Addr()}}},
				{Start: 8192, End: 16383, Nodes: []redis.ClusterNode{{Addr: b.Addr()}}},
			}, nil
		},
	})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))

	streams, err := s.Streams(ctx)
	if err != nil || len(streams) != 2 {
		t.Fatalf("Streams = %q, %v; want one per server", streams, err)
	}
	w := watchEvents(t, ctx, s, 100, nil)
	defer w.stop()
	want := map[string]bool{}
	start := time.Now()
	w.waitFor("Synced", isKind(blocklist.Synced), 10*time.Second)
	timer := time.NewTimer(10*time.Second - time.Since(start))
	defer timer.Stop()
	exp := time.Now().Add(time.Hour)
	for i := range 10 {
		id := "manual-" + strconv.Itoa(i)
		if err := s.Revoke(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	for len(want) > 0 {
		select {
		case ev := <-w.C:
			delete(want, ev.JTI)
		case <-timer.C:
			t.Fatalf("not delivered within 10 s: %v", want)
		}
	}
}
