package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

var checkSentinels = map[string]error{
	"ErrEviction":       redisstore.ErrEviction,
	"ErrServerVersion":  redisstore.ErrServerVersion,
	"ErrStreamTooShort": redisstore.ErrStreamTooShort,
	"ErrNotDurable":     redisstore.ErrNotDurable,
}

// wantProblems checks that err wraps exactly the sentinels named in want.
func wantProblems(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	for name, sentinel := range checkSentinels {
		wanted := false
		for _, w := range want {
			wanted = wanted || w == name
		}
		if got := errors.Is(err, sentinel); got != wanted {
			t.Errorf("%s: CheckServer() = %v; errors.Is(%s) = %v, want %v", what, err, name, got, wanted)
		}
	}
	if len(want) == 0 && err != nil {
		t.Errorf("%s: CheckServer() = %v, want nil", what, err)
	}
}

var durable = []string{"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"}

// TestCheckServer starts a server with each configuration that can lose
// revocations, and one that cannot.
func TestCheckServer(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		args []string
		want []string
	}{
		"noeviction and appendfsync always": {durable, nil},
		"no persistence":                    {nil, []string{"ErrNotDurable"}},
		"RDB snapshots only":                {[]string{"--save", "3600 1", "--maxmemory-policy", "noeviction"}, []string{"ErrNotDurable"}},
		"appendfsync everysec":              {[]string{"--appendonly", "yes", "--appendfsync", "everysec"}, []string{"ErrNotDurable"}},
		"appendfsync no":                    {[]string{"--appendonly", "yes", "--appendfsync", "no"}, []string{"ErrNotDurable"}},
		"allkeys-lru":                       {append(durable, "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"), []string{"ErrEviction"}},
		"volatile-ttl":                      {append(durable, "--maxmemory-policy", "volatile-ttl"), []string{"ErrEviction"}},
		"volatile-lru, no persistence":      {[]string{"--maxmemory-policy", "volatile-lru"}, []string{"ErrEviction", "ErrNotDurable"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Redis(t, c.args...)
			s := redisstore.New(redistest.Client(t, srv.Addr()))
			err := s.CheckServer(t.Context())
			wantProblems(t, name, err, c.want...)
			if err != nil && !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("%s: CheckServer() = %v: does not name the server %s", name, err, srv.Addr())
			}
		})
	}
}

// Issue 14, case 3: with maxmemory 3mb and allkeys-lru, unrelated keys
// filling memory evict a revocation and the logged-out token works again.
// Nothing in the Store can prevent that; CheckServer reports it.
func TestCheckServerEviction(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t, "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru", "--appendonly", "yes", "--appendfsync", "always")
	client := redistest.Client(t, srv.Addr())
	ctx := t.Context()
	s := redisstore.New(client)
	wantProblems(t, "allkeys-lru", s.CheckServer(ctx), "ErrEviction")

	if err := s.Revoke(ctx, "logged-out", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 4096)
	evicted := false
	for round := 0; round < 40 && !evicted; round++ { // at most 40 x 100 x 4 KB
		pipe := client.Pipeline()
		for i := range 100 {
			pipe.Set(ctx, fmt.Sprintf("unrelated:%d:%d", round, i), value, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		revoked, err := s.IsRevoked(ctx, "logged-out")
		if err != nil {
			t.Fatal(err)
		}
		evicted = !revoked
	}
	if !evicted {
		t.Fatal("the revocation survived 16 MB of unrelated keys in a 3 MB allkeys-lru server: the danger CheckServer reports did not show")
	}
	wantProblems(t, "allkeys-lru after eviction", s.CheckServer(ctx), "ErrEviction")
}

// TestCheckServerStream: a stream trimmed shorter than WithStreamMaxLen, by
// something other than this Store, is reported; an untrimmed one and a
// missing one are not.
func TestCheckServerStream(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t, durable...)
	client := redistest.Client(t, srv.Addr())
	ctx := t.Context()
	s := redisstore.New(client, redisstore.WithStreamMaxLen(1000))
	wantProblems(t, "no stream yet", s.CheckServer(ctx))
	for i := range 20 {
		if err := s.Revoke(ctx, fmt.Sprint("id-", i), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	wantProblems(t, "20 announcements, none trimmed", s.CheckServer(ctx))
	if err := client.XTrimMaxLen(ctx, redisstore.DefaultPrefix, 5).Err(); err != nil {
		t.Fatal(err)
	}
	wantProblems(t, "trimmed to 5 of 20", s.CheckServer(ctx), "ErrStreamTooShort")
	// A store without announcements does not look at the stream.
	wantProblems(t, "WithoutEvents", redisstore.New(client, redisstore.WithoutEvents()).CheckServer(ctx))
}

// TestCheckServerCluster checks every master of a cluster and names the
// ones at fault; a Ring has each shard checked the same way.
func TestCheckServerCluster(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	s := redisstore.New(client)

	err := s.CheckServer(ctx)
	wantProblems(t, "cluster without persistence", err, "ErrNotDurable")
	for _, n := range cluster.Nodes {
		if err == nil || !strings.Contains(err.Error(), n.Addr()) {
			t.Errorf("CheckServer() = %v: does not name master %s", err, n.Addr())
		}
	}

	for _, n := range cluster.Nodes {
		node := redistest.Client(t, n.Addr())
		for _, kv := range [][2]string{{"appendonly", "yes"}, {"appendfsync", "always"}} {
			if err := node.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantProblems(t, "cluster with appendfsync always", s.CheckServer(ctx))

	bad := cluster.Nodes[1].Addr()
	if err := redistest.Client(t, bad).ConfigSet(ctx, "maxmemory-policy", "allkeys-lfu").Err(); err != nil {
		t.Fatal(err)
	}
	err = s.CheckServer(ctx)
	wantProblems(t, "one master with allkeys-lfu", err, "ErrEviction")
	for _, n := range cluster.Nodes {
		if named := err != nil && strings.Contains(err.Error(), n.Addr()); named != (n.Addr() == bad) {
			t.Errorf("CheckServer() = %v: names %s: %v, want %v", err, n.Addr(), named, n.Addr() == bad)
		}
	}

	shards := map[string]string{"a": testserver.Redis(t).Addr(), "b": testserver.Redis(t, durable...).Addr()}
	ring := redis.NewRing(&redis.RingOptions{Addrs: shards, ContextTimeoutEnabled: true})
	t.Cleanup(func() { ring.Close() })
	err = redisstore.New(ring).CheckServer(ctx)
	wantProblems(t, "ring with one shard without persistence", err, "ErrNotDurable")
	if err == nil || !strings.Contains(err.Error(), shards["a"]) || strings.Contains(err.Error(), shards["b"]) {
		t.Errorf("ring: CheckServer() = %v; want shard a (%s) named, not b", err, shards["a"])
	}
}

// A server that cannot be reached is an error of its own, none of the
// sentinels: the check could not be made.
func TestCheckServerUnreachable(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := redisstore.New(client).CheckServer(ctx)
	if err == nil {
		t.Fatal("CheckServer of an unreachable server = nil")
	}
	wantProblems(t, "unreachable", err, "(none)")
}

// On a cluster with replicas every replica is checked too: a replica that
// would evict keys once a failover promotes it is reported, named.
func TestCheckServerClusterReplicas(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	s := redisstore.New(client)
	// The client knows a replica once the node it asks lists it in CLUSTER
	// SLOTS, which gossip may delay a little after the cluster is up.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var mu sync.Mutex
		seen := 0
		client.ReloadState(ctx)
		_ = client.ForEachShard(ctx, func(context.Context, *redis.Client) error { mu.Lock(); seen++; mu.Unlock(); return nil })
		if seen == len(cluster.Nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client's slot map lists %d of %d nodes after 15 s", seen, len(cluster.Nodes))
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantProblems(t, "3+3 with appendfsync always", s.CheckServer(ctx))

	replica := cluster.Nodes[len(cluster.Nodes)-1].Addr() // the replicas come after the masters
	if err := redistest.Client(t, replica).ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	// CheckServer walks the slot map it reloads from whichever node it
	// asks, and gossip may still leave the replica out of one node's view:
	// it must be reported once the map lists it.
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err = s.CheckServer(ctx)
		if errors.Is(err, redisstore.ErrEviction) || time.Now().After(deadline) {
			break
		}
	}
	wantProblems(t, "a replica with volatile-lru", err, "ErrEviction")
	if err == nil || !strings.Contains(err.Error(), replica) {
		t.Errorf("CheckServer() = %v: does not name the replica %s", err, replica)
	}
}
