package redisstore_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

func TestWithWaitRefusesBadArguments(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	t.Cleanup(func() { client.Close() })
	type wrapped struct{ redis.UniversalClient }
	for name, c := range map[string]struct {
		client redis.UniversalClient
		opt    redisstore.Option
	}{
		"negative replicas":   {client, redisstore.WithWait(-1, time.Second)},
		"zero timeout":        {client, redisstore.WithWait(1, 0)},
		"negative timeout":    {client, redisstore.WithWait(1, -time.Second)},
		"sub-ms timeout":      {client, redisstore.WithWait(1, 500*time.Microsecond)},
		"unreachable masters": {wrapped{client}, redisstore.WithWait(1, time.Second)},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil {
					t.Errorf("%s: New did not panic", name)
					return
				}
				if !strings.Contains(fmt.Sprint(r), "redisstore: WithWait") {
					t.Errorf("%s: New panicked with %v; want a message naming WithWait", name, r)
				}
			}()
			redisstore.New(c.client, c.opt)
		}()
	}
	// Off: no panic, whatever the timeout.
	redisstore.New(client, redisstore.WithWait(0, 0))
	redisstore.New(wrapped{client}, redisstore.WithWait(0, time.Second))
}

// standaloneWithReplica starts a master and a replica following it, and
// returns both once the replica is in sync.
func standaloneWithReplica(t *testing.T) (master, replica *testserver.Server) {
	t.Helper()
	master = testserver.Redis(t, "--repl-diskless-sync-delay", "0")
	_, port, _ := strings.Cut(master.Addr(), ":")
	replica = testserver.Redis(t, "--replicaof", "127.0.0.1", port)
	rc := redistest.Client(t, replica.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := rc.Info(t.Context(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0") {
			return master, replica
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not in sync after 10 s: %v\n%s", err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWithWaitStandalone: with a healthy replica every write waits and
// succeeds; with the replica paused, Revoke and a winning RevokeOnce return
// ErrNotReplicated (and so does asking for more replicas than exist), with
// announcements on and off.
func TestWithWaitStandalone(t *testing.T) {
	t.Parallel()
	master, replica := standaloneWithReplica(t)
	client := redistest.Client(t, master.Addr())
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, events := range []bool{true, false} {
		// A generous timeout while the replica is healthy: a loaded machine
		// may take a while to acknowledge.
		opts := []redisstore.Option{redisstore.WithPrefix(redistest.Prefix(t)), redisstore.WithWait(1, 2*time.Second)}
		if !events {
			opts = append(opts, redisstore.WithoutEvents())
		}
		s := redisstore.New(client, opts...)
		name := fmt.Sprintf("events=%v", events)
		if err := s.Revoke(ctx, "healthy", exp); err != nil {
			t.Fatalf("%s: Revoke with the replica in sync: %v", name, err)
		}
		if won, err := s.RevokeOnce(ctx, "healthy-once", exp); err != nil || !won {
			t.Fatalf("%s: RevokeOnce with the replica in sync = %v, %v", name, won, err)
		}
		if won, err := s.RevokeOnce(ctx, "healthy-once", exp); err != nil || won {
			t.Fatalf("%s: second RevokeOnce = %v, %v; want false, nil", name, won, err)
		}
		// What was acknowledged is on the replica.
		rc := redistest.Client(t, replica.Addr())
		for _, id := range []string{"healthy", "healthy-once"} {
			if n, err := rc.Exists(ctx, s.Prefix()+id).Result(); err != nil || n != 1 {
				t.Fatalf("%s: %s acknowledged but not on the replica: %d, %v", name, id, n, err)
			}
		}

		more := redisstore.New(client, append(opts, redisstore.WithWait(2, 50*time.Millisecond))...)
		if err := more.Revoke(ctx, "two-replicas", exp); !errors.Is(err, redisstore.ErrNotReplicated) {
			t.Fatalf("%s: Revoke waiting for 2 of 1 replicas: %v; want ErrNotReplicated", name, err)
		}

		if err := replica.Pause(); err != nil {
			t.Fatal(err)
		}
		s = redisstore.New(client, append(opts, redisstore.WithWait(1, 100*time.Millisecond))...)
		start := time.Now()
		err := s.Revoke(ctx, "lagging", exp)
		took := time.Since(start)
		if !errors.Is(err, redisstore.ErrNotReplicated) || !strings.HasPrefix(err.Error(), "redisstore: revoke: ") {
			t.Errorf("%s: Revoke with the replica paused: %v; want redisstore: revoke: ... ErrNotReplicated", name, err)
		}
		if took < 100*time.Millisecond {
			t.Errorf("%s: Revoke gave up after %v, before the 100 ms timeout", name, took)
		}
		if won, err := s.RevokeOnce(ctx, "lagging-once", exp); won || !errors.Is(err, redisstore.ErrNotReplicated) {
			t.Errorf("%s: RevokeOnce with the replica paused = %v, %v; want false, ErrNotReplicated", name, won, err)
		}
		// The master holds the write: it may well survive.
		if ok, err := s.IsRevoked(ctx, "lagging"); err != nil || !ok {
			t.Errorf("%s: IsRevoked on the master after ErrNotReplicated = %v, %v; want true", name, ok, err)
		}
		if err := replica.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := more.Revoke(ctx, "lagging", exp); !errors.Is(err, redisstore.ErrNotReplicated) {
			t.Errorf("%s: Revoke waiting for 2 of 1 replicas after the replica resumed: %v", name, err)
		}
		s = redisstore.New(client, opts...)
		if err := s.Revoke(ctx, "lagging", exp); err != nil {
			t.Errorf("%s: Revoke retried after the replica resumed: %v", name, err)
		}
	}
}

// TestWithWaitClusterOwnMaster: on Cluster WAIT runs on the connection of
// the master that took the write. With one master's replica paused, writes
// of keys on that master fail with ErrNotReplicated, and writes of keys on
// the other masters succeed (a WAIT sent to any other connection would
// answer 1 for them all).
func TestWithWaitClusterOwnMaster(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	prefix := redistest.Prefix(t)
	// A generous timeout: on a loaded machine a healthy replica may take
	// a while to acknowledge, and a paused one costs the whole timeout.
	s := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithoutEvents(),
		redisstore.WithWait(1, 2*time.Second))

	ids := make([]string, 60)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(i)
		if err := s.Revoke(ctx, ids[i], exp); err != nil {
			t.Fatalf("Revoke with every replica in sync: %v", err)
		}
	}
	lagging, err := cluster.MasterFor(ctx, prefix+ids[0])
	if err != nil {
		t.Fatal(err)
	}
	replica, err := cluster.ReplicaOf(ctx, lagging)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	var onLagging, elsewhere int
	for _, id := range ids {
		m, err := cluster.MasterFor(ctx, prefix+id)
		if err != nil {
			t.Fatal(err)
		}
		if m == lagging && onLagging == 3 {
			continue // enough: each costs the whole timeout
		}
		err = s.Revoke(ctx, id, exp.Add(time.Minute))
		if m == lagging {
			onLagging++
			if !errors.Is(err, redisstore.ErrNotReplicated) {
				t.Errorf("Revoke(%q) on the master whose replica is paused: %v; want ErrNotReplicated", id, err)
			}
		} else {
			elsewhere++
			if err != nil {
				t.Errorf("Revoke(%q) on a healthy master: %v", id, err)
			}
		}
	}
	if onLagging == 0 || elsewhere == 0 {
		t.Fatalf("%d ids on the lagging master, %d elsewhere: the test proves nothing", onLagging, elsewhere)
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
}

// TestWithWaitClusterRedirects: a write under WithWait follows ASK while
// its slot migrates, and MOVED once it has moved, as go-redis does for its
// own commands, so resharding does not fail logouts.
func TestWithWaitClusterRedirects(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	prefix := "{reshard}"
	s := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithoutEvents(),
		redisstore.WithWait(1, time.Second))
	if err := s.Revoke(ctx, "before", exp); err != nil {
		t.Fatal(err)
	}
	source, err := cluster.MasterFor(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var target *testserver.Server
	for _, n := range cluster.Nodes[:3] {
		if n != source {
			target = n
			break
		}
	}
	slot := testserver.KeySlot(prefix)
	src, dst := redistest.Client(t, source.Addr()), redistest.Client(t, target.Addr())
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dst.Do(ctx, "cluster", "setslot", slot, "importing", srcID).Err())
	must(src.Do(ctx, "cluster", "setslot", slot, "migrating", dstID).Err())

	// Migrating: a new key is created on the target, after ASK.
	if err := s.Revoke(ctx, "during", exp); err != nil {
		t.Fatalf("Revoke of a new key while its slot migrates: %v", err)
	}
	// Move the old key too, then hand the slot over.
	must(src.Do(ctx, "migrate", "127.0.0.1", strings.Split(target.Addr(), ":")[1], "", 0, 5000, "keys", prefix+"before").Err())
	for _, c := range []*redis.Client{dst, src} {
		must(c.Do(ctx, "cluster", "setslot", slot, "node", dstID).Err())
	}
	// Moved: the client's map still points at the source, which answers
	// MOVED.
	if err := s.Revoke(ctx, "after", exp); err != nil {
		t.Fatalf("Revoke after the slot moved: %v", err)
	}
	if err := s.Revoke(ctx, "before", exp.Add(time.Hour)); err != nil {
		t.Fatalf("Revoke extending a moved key: %v", err)
	}
	for _, id := range []string{"before", "during", "after"} {
		if n, err := dst.Exists(ctx, prefix+id).Result(); err != nil || n != 1 {
			t.Errorf("%s is not on the slot's new master: %d, %v", id, n, err)
		}
	}
	if until, err := s.RevokedUntil(ctx, "before"); err != nil || until.Before(exp.Add(time.Hour)) || until.After(exp.Add(time.Hour+time.Millisecond)) {
		t.Errorf("RevokedUntil(before) = %v, %v; want %v", until, err, exp.Add(time.Hour))
	}
}

// TestConformanceStandaloneWithWait runs the suite on a master with one
// replica, every write waiting for it.
func TestConformanceStandaloneWithWait(t *testing.T) {
	t.Parallel()
	master, _ := standaloneWithReplica(t)
	client := redistest.Client(t, master.Addr())
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)), redisstore.WithWait(1, 2*time.Second))
	})
}
