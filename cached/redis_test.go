package cached_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// The cache over real Redis servers: the conformance suite, and one
// integration test of each behaviour that watch_test.go proves in process
// on memorystore (propagation, a cut with a server restart, the replica
// over Cluster, an outage), plus what only a server has (partition_test.go:
// client options over a cut link, a frozen server; writer_test.go: an
// outside writer following the documented recipe).

// redisServer is the one standalone redis-server the package's tests and
// benchmarks share; each user keeps to its own key prefix. Tests that kill
// a server start their own.
var redisServer = testserver.SharedRedis()

func TestMain(m *testing.M) { redistest.Main(m, redisServer) }

func TestConformanceRedis(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redisServer.Get(t).Addr())
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return newCached(t, redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t))))
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		// A cache that has talked to its server, whose server is then killed.
		srv := testserver.Redis(t)
		// No retries: go-redis would spend seconds redialling a dead server.
		client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
		t.Cleanup(func() { client.Close() })
		c := newCached(t, redisstore.New(client))
		mustRevoked(t, c, "seen-before-the-kill", false, "fills the cache")
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		return c
	}))
}

// waitFor polls ok every millisecond until it holds, or fails the test
// after d.
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitLive(t *testing.T, c *cached.Store) {
	t.Helper()
	// Once the server answers, a watch is back within its backoff (at
	// most a second) and two reads bounded by the silence bound; 10 s
	// leaves room for attempts timed out on a loaded machine.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Watch != cached.WatchLive {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for the watch to be live after 10s; Stats %+v", c.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// instance is one app instance: its own client and its own cached Store
// over the shared Redis.
func instance(t *testing.T, client redis.UniversalClient, prefix string, opts ...cached.Option) *cached.Store {
	t.Helper()
	opts = append([]cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithWatchNegativeTTL(time.Hour)}, opts...)
	return newCached(t, redisstore.New(client, redisstore.WithPrefix(prefix)), opts...)
}

// testPropagation: a revocation on A reaches B within 100 ms, although B
// keeps "not revoked" answers for an hour.
func testPropagation(t *testing.T, newClient func() redis.UniversalClient) {
	prefix := redistest.Prefix(t)
	a := instance(t, newClient(), prefix)
	b := instance(t, newClient(), prefix)
	waitLive(t, b)
	exp := time.Now().Add(time.Hour)
	slow := 0
	for i := range 20 {
		jti := fmt.Sprintf("token-%d", i)
		mustRevoked(t, b, jti, false, "not revoked yet: cached for an hour")
		mustRevoke(t, a, jti, exp)
		revoked := time.Now()
		waitFor(t, time.Second, jti+" revoked on B", func() bool {
			ok, err := b.IsRevoked(context.Background(), jti)
			return err == nil && ok
		})
		if time.Since(revoked) > 100*time.Millisecond {
			slow++
		}
	}
	// Under 100 ms each, bar a few on a machine loaded by -race and
	// parallel tests; BenchmarkPropagation measures the real latency.
	if slow > 5 {
		t.Errorf("%d of 20 revocations took over 100ms to reach B", slow)
	}
	if st := b.Stats(); st.WatchEvents < 20 || st.Watch != cached.WatchLive || st.WatchSyncs != 1 {
		t.Errorf("B's Stats = %+v, want 20 events or more, live, one sync", st)
	}
}

func TestPropagationStandalone(t *testing.T) {
	t.Parallel()
	addr := redisServer.Get(t).Addr()
	testPropagation(t, func() redis.UniversalClient { return redistest.Client(t, addr) })
}

// guard checks B's answers for ids as they get revoked, in a loop, until
// stopped: once Revoke of an id returned, B must never answer "not revoked"
// for it. Errors are allowed (the server may be down).
type guard struct {
	revoked sync.Map // jti -> struct{}: Revoke returned nil
	ids     []string
	bad     atomic.Value // string
	stop    chan struct{}
	done    chan struct{}
	checks  atomic.Int64
}

func startGuard(b blocklist.Store, ids []string) *guard {
	g := &guard{ids: ids, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for {
			for _, jti := range g.ids {
				select {
				case <-g.stop:
					return
				default:
				}
				_, wasRevoked := g.revoked.Load(jti)
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				ok, err := b.IsRevoked(ctx, jti)
				cancel()
				g.checks.Add(1)
				if err == nil && !ok && wasRevoked {
					g.bad.CompareAndSwap(nil, jti)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return g
}

func (g *guard) finish(t *testing.T) {
	t.Helper()
	close(g.stop)
	<-g.done
	if bad := g.bad.Load(); bad != nil {
		t.Errorf("B answered \"not revoked\" for %q after its Revoke returned", bad)
	}
	if g.checks.Load() == 0 {
		t.Error("the guard made no check")
	}
}

// cutter dials B's connections, and can cut them all and refuse new ones:
// B alone is cut off from Redis, a real server that A keeps using.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cut off by the test")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cutter) set(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

// testCut: B is cut off from Redis (and, with restart, the server is
// killed and restarted on its port meanwhile, keeping its data and the
// stream: appendonly, fsync always). TestCut does the cut in process,
// with and without a replica, within the log and beyond it. Revocations A makes while B is cut
// off reach B once it is back, and B never answers "not revoked" for any of
// them, at any moment, though it had cached "not revoked" for an hour.
func testCut(t *testing.T, restart bool, opts ...cached.Option) {
	srv := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	prefix := redistest.Prefix(t)
	a := instance(t, redistest.Client(t, srv.Addr()), prefix)
	var cut cutter
	bClient := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: cut.dial})
	t.Cleanup(func() { bClient.Close() })
	b := instance(t, bClient, prefix, opts...)
	waitLive(t, b)
	exp := time.Now().Add(time.Hour)

	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("cut-%d", i))
	}
	for _, jti := range ids {
		mustRevoked(t, b, jti, false, "cached as not revoked, for an hour")
	}
	mustRevoke(t, a, "before", exp)
	// Through the watch, not a lookup: B's watch is reading, not
	// starting, when it is cut off.
	waitFor(t, 5*time.Second, "before on B's watch", func() bool { return b.Stats().WatchEvents >= 1 })
	g := startGuard(b, ids)

	cut.set(true)
	waitFor(t, 5*time.Second, "B's watch to be lost", func() bool { return b.Stats().Watch == cached.WatchLost })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if restart {
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, jti := range ids {
		for {
			err := a.Revoke(ctx, jti, exp)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // the pool drops its dead connections
		}
		g.revoked.Store(jti, struct{}{})
	}
	time.Sleep(20 * time.Millisecond) // the guard checks B while cut off
	cut.set(false)
	waitLive(t, b)
	g.finish(t)
	for _, jti := range ids {
		mustRevoked(t, b, jti, true, "revoked while B was cut off")
	}
	mustRevoked(t, b, "before", true, "revoked before the cut")
	if st := b.Stats(); st.WatchSyncs != 1 {
		t.Errorf("B's watch synced %d times: the stream kept every announcement, so it should have resumed", st.WatchSyncs)
	}
}

func TestCutRestart(t *testing.T) {
	t.Parallel()
	testCut(t, true)
}

// revokeMany revokes ids through s from 8 goroutines (revokeEach) and
// fails the test on the first error.
func revokeMany(t *testing.T, s blocklist.Store, ids []string, exp time.Time) {
	t.Helper()
	if err := revokeEach(s, ids, exp); err != nil {
		t.Fatal(err)
	}
}

// testReplica: a replica started after n revocations answers every
// one of them, and ids never revoked, without a call to Redis; one started
// while more revocations keep coming misses none.
func testReplica(t *testing.T, n, more int, newClient func() redis.UniversalClient) {
	prefix := redistest.Prefix(t)
	writer := redisstore.New(newClient(), redisstore.WithPrefix(prefix))
	exp := time.Now().Add(time.Hour)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("replica-%d", i)
	}
	revokeMany(t, writer, ids, exp)

	b := instance(t, newClient(), prefix, cached.WithReplica())
	waitFor(t, 10*time.Second, "the replica to be ready", func() bool { return b.Stats().ReplicaReady })
	for i, jti := range ids {
		mustRevoked(t, b, jti, true, "revoked before the replica started")
		mustRevoked(t, b, fmt.Sprintf("never-%d", i), false, "never revoked")
	}
	if st := b.Stats(); st.BackendCalls != 0 || st.ReplicaSize != len(ids) {
		t.Errorf("replica Stats = %+v, want no backend call and %d entries", st, len(ids))
	}

	// Revocations keep coming while another replica starts.
	stream := make([]string, more)
	for i := range stream {
		stream[i] = fmt.Sprintf("stream-%d", i)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		revokeMany(t, writer, stream, exp)
	}()
	time.Sleep(5 * time.Millisecond)
	c := instance(t, newClient(), prefix, cached.WithReplica())
	wg.Wait()
	// Ready too: the watch applies announcements to a replica while it
	// loads, so one can hold every revocation before its load is done,
	// and a replica not ready asks the store.
	full := func(r *cached.Store) bool {
		st := r.Stats()
		return st.ReplicaSize == len(ids)+len(stream) && st.ReplicaReady
	}
	waitFor(t, 10*time.Second, "every revocation in both replicas, both ready", func() bool { return full(b) && full(c) })
	for _, r := range []*cached.Store{b, c} {
		for _, jti := range stream {
			mustRevoked(t, r, jti, true, "revoked while the replica started")
		}
		if st := r.Stats(); st.BackendCalls != 0 {
			t.Errorf("a replica made %d backend calls, want 0", st.BackendCalls)
		}
	}
}

// The replica over Cluster: its load scans every master and its watch
// reads every master's announcements (TestReplica has the same with 10,000
// revocations in process).
func TestReplicaCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	testReplica(t, 2000, 500, func() redis.UniversalClient { return redistest.ClusterClient(t, c.Addrs()) })
}

// The server dies and comes back: while it is down every check of an id
// not known to be revoked fails (never a silent false); once it is back the
// answers are right at once, with nothing stale left from the outage.
// The cached "not revoked" for an id seen before the outage is
// distrusted as soon as the watch reports the connection lost.
// TestOutageFailsClosed and TestErrorsAreNotCached do the same in process,
// with and without a watch.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	const ttl = 100 * time.Millisecond
	srv := testserver.Redis(t)
	prefix := redistest.Prefix(t)
	// No retries: go-redis would spend seconds redialling a dead server.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	c := newCached(t, redisstore.New(client, redisstore.WithPrefix(prefix)), cached.WithNegativeTTL(ttl))
	waitLive(t, c)
	exp := time.Now().Add(time.Hour)

	mustRevoke(t, c, "revoked", exp)
	mustRevoked(t, c, "seen", false, "never revoked")

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the watch to report the server lost", func() bool { return c.Stats().Watch == cached.WatchLost })
	for _, jti := range []string{"seen", "unseen"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		ok, err := c.IsRevoked(ctx, jti)
		cancel()
		if err == nil {
			t.Errorf("IsRevoked(%q) with the server down = %v, nil; want an error", jti, ok)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := c.Revoke(ctx, "during", exp); err == nil {
		t.Error("Revoke with the server down succeeded")
	}
	cancel()
	mustRevoked(t, c, "revoked", true, "a known revocation holds until its exp, server or not")
	if st := c.Stats(); st.Errors < 3 {
		t.Errorf("Stats.Errors = %d, want at least 3", st.Errors)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for client.Ping(ctx).Err() != nil { // let the pool drop its dead connections
		if ctx.Err() != nil {
			t.Fatal("redis-server not answering after restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Another process revokes the ids whose lookups failed: the failures
	// left no "not revoked" entry, so this one sees them at once.
	other := redisstore.New(redistest.Client(t, srv.Addr()), redisstore.WithPrefix(prefix))
	for _, jti := range []string{"seen", "unseen"} {
		mustRevoke(t, other, jti, exp)
		mustRevoked(t, c, jti, true, "revoked by another process after the outage")
	}
	mustRevoked(t, c, "during", false, "the failed Revoke left no local entry")
}
