package cached_test

import (
	"context"
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

// Two processes sharing one Redis: a revocation made by the other one shows
// here within NegativeTTL.
func TestRedisStaleness(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	const slack = 150 * time.Millisecond
	addr, prefix := redisServer.Get(t).Addr(), redistest.Prefix(t)
	here := newCached(t, redisstore.New(redistest.Client(t, addr), redisstore.WithPrefix(prefix)),
		cached.WithNegativeTTL(ttl))
	other := redisstore.New(redistest.Client(t, addr), redisstore.WithPrefix(prefix))

	mustRevoked(t, here, "a", false, "never revoked")
	mustRevoke(t, other, "a", time.Now().Add(time.Hour))
	revoked := time.Now()
	for {
		if ok, err := here.IsRevoked(context.Background(), "a"); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if waited := time.Since(revoked); waited > ttl+slack {
			t.Fatalf("revocation by the other process still unseen after %v; NegativeTTL is %v", waited, ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}

	mustRevoke(t, here, "b", time.Now().Add(time.Hour))
	mustRevoked(t, other, "b", true, "written through to Redis")
	mustRevoked(t, here, "b", true, "seen here at once")
}

// The server dies and comes back: while it is down every check of an id
// not known to be revoked fails (never a silent false); once it is back the
// answers are right at once, with nothing stale left from the outage.
//
// Without a watch, the cached "not revoked" for an id seen before the
// outage lasts NegativeTTL; with the watch (the default over redisstore) it
// is distrusted as soon as the watch reports the connection lost.
func TestRedisOutage(t *testing.T) {
	t.Run("without-watch", func(t *testing.T) { testRedisOutage(t, false) })
	t.Run("watch", func(t *testing.T) { testRedisOutage(t, true) })
}

func testRedisOutage(t *testing.T, watch bool) {
	t.Parallel()
	const ttl = 100 * time.Millisecond
	srv := testserver.Redis(t)
	prefix := redistest.Prefix(t)
	// No retries: go-redis would spend seconds redialling a dead server.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	opts := []cached.Option{cached.WithNegativeTTL(ttl)}
	if !watch {
		opts = append(opts, cached.WithoutWatch())
	}
	c := newCached(t, redisstore.New(client, redisstore.WithPrefix(prefix)), opts...)
	if watch {
		waitLive(t, c)
	}
	exp := time.Now().Add(time.Hour)

	mustRevoke(t, c, "revoked", exp)
	mustRevoked(t, c, "seen", false, "never revoked")

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if watch {
		waitFor(t, 10*time.Second, "the watch to report the server lost", func() bool { return c.Stats().Watch == cached.WatchLost })
	} else {
		time.Sleep(ttl) // the cached "not revoked" for "seen" expires
	}
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
