package redisstore_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// gatedConn holds every write while its gate is closed: a network (or a
// process paused by its scheduler) that delays a request after the
// client chose what to send.
type gatedConn struct {
	net.Conn
	gate func() <-chan struct{}
}

func (c gatedConn) Write(b []byte) (int, error) {
	<-c.gate()
	return c.Conn.Write(b)
}

// TestClusterInFlightWriteAcrossReshard: a Revoke chooses its master's
// stream, then its request is delayed on the network while a resharding
// gives that master a lower slot (so another stream key) and a watch
// follows it (Lost, then Synced on the new set of streams). When the
// delayed request lands, the old stream is still on the same master, so
// the XADD succeeds there and Revoke returns nil: the announcement must
// still reach the watch, which reads only the new set, or the watch must
// report Lost or Synced after the write.
func TestClusterInFlightWriteAcrossReshard(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	ctx := t.Context()
	prefix := redistest.Prefix(t)

	open := make(chan struct{})
	close(open)
	var gate atomic.Pointer[chan struct{}]
	gate.Store(&open)
	current := func() <-chan struct{} { return *gate.Load() }
	wclient := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: cluster.Addrs(), ContextTimeoutEnabled: true,
		ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return gatedConn{Conn: c, gate: current}, nil
		},
	})
	t.Cleanup(func() { wclient.Close() })
	writer := redisstore.New(wclient, redisstore.WithPrefix(prefix))
	watcher := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix))

	// The master of slot 5461 (A) gains slot 1, empty, from the master of
	// slot 0 (B): A's lowest slot goes from 5461 to 1, while its old
	// stream's slot stays on A.
	a, err := cluster.MasterFor(ctx, "{"+strconv.Itoa(tagOf(5461))+"}")
	if err != nil {
		t.Fatal(err)
	}
	b, err := cluster.MasterFor(ctx, "{"+strconv.Itoa(tagOf(0))+"}")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("slots 0 and 5461 on one master")
	}
	var ids []string // ids whose keys A holds, not in slot 1
	for i := 0; len(ids) < 2; i++ {
		id := "inflight-" + strconv.Itoa(i)
		slot := testserver.KeySlot(prefix + id)
		if m, err := cluster.MasterFor(ctx, prefix+id); err == nil && m == a && slot != 1 {
			ids = append(ids, id)
		}
	}

	w := watchEvents(t, ctx, watcher, 1000, nil)
	defer w.stop()
	next := func(what string, k blocklist.EventKind) {
		t.Helper()
		w.waitFor(what, isKind(k), 10*time.Second)
	}
	next("Synced", blocklist.Synced)

	exp := time.Now().Add(time.Hour)
	// A first write: the writer's map of streams is fresh.
	if err := writer.Revoke(ctx, ids[0], exp); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	gate.Store(&held)
	revoked := make(chan error, 1)
	go func() { revoked <- writer.Revoke(ctx, ids[1], exp) }()
	time.Sleep(100 * time.Millisecond) // the Revoke has chosen its stream

	aID, err := redistest.Client(t, a.Addr()).ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append([]*testserver.Server{b, a}, cluster.Nodes...) {
		if err := redistest.Client(t, n.Addr()).Do(ctx, "cluster", "setslot", 1, "node", aID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	next("Lost after the resharding", blocklist.Lost)
	next("Synced after the resharding", blocklist.Synced)

	// The delayed request lands now.
	gate.Store(&open)
	close(held)
	if err := <-revoked; err != nil {
		t.Fatalf("the delayed Revoke: %v", err)
	}
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev := <-w.C:
			switch {
			case ev.Kind == blocklist.Revoked && ev.JTI == ids[1]:
				return
			case ev.Kind == blocklist.Lost || ev.Kind == blocklist.Synced:
				t.Logf("the watch reported %s after the delayed write", ev.Kind)
				return // the watch owns up to a gap: its subscriber reloads
			}
		case <-timer.C:
			st, _ := writer.Streams(ctx)
			t.Fatalf("Revoke(%q) returned nil after the watch had Synced on the new streams %q, and the watch never reported it", ids[1], st)
		}
	}
}

// tagOf is T(slot): the smallest decimal integer whose hash slot is slot.
func tagOf(slot int) int {
	for n := 0; ; n++ {
		if testserver.KeySlot(strconv.Itoa(n)) == slot {
			return n
		}
	}
}
