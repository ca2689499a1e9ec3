package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// ringBehindProxies returns a Ring of two fresh servers, each reached
// through a proxy, on a client that would wait a minute for a reply and
// retry ten times: the watch must not depend on that.
func ringBehindProxies(t *testing.T) (*redis.Ring, map[string]*chaosproxy.Proxy) {
	t.Helper()
	proxies := map[string]*chaosproxy.Proxy{}
	shards := map[string]string{}
	for _, name := range []string{"a", "b"} {
		p := proxied(t, testserver.Redis(t).Addr())
		proxies[name], shards[name] = p, p.Addr()
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: shards, ReadTimeout: time.Minute, MaxRetries: 10})
	t.Cleanup(func() { ring.Close() })
	return ring, proxies
}

// TestWatchRingOwnConnection: on a Ring the watch reads through a
// connection of its own to the stream's shard, so a broken link is
// reported Lost at once and a frozen one within WatchSilenceBound, not
// after the client's retries and timeouts; and it resumes when the link
// heals.
func TestWatchRingOwnConnection(t *testing.T) {
	t.Parallel()
	for _, mode := range []chaosproxy.Mode{chaosproxy.Refuse, chaosproxy.AcceptClose, chaosproxy.Freeze} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			ring, proxies := ringBehindProxies(t)
			s := redisstore.New(ring, redisstore.WithPrefix(redistest.Prefix(t)))
			if err := s.Revoke(t.Context(), "before", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			e := watch(t, s)
			e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
			time.Sleep(2 * watchBlockForTests) // reading, not starting
			for _, p := range proxies {
				if err := p.Set(mode); err != nil {
					t.Fatal(err)
				}
			}
			cut := time.Now()
			bound := 500 * time.Millisecond
			if mode == chaosproxy.Freeze {
				bound = redisstore.WatchSilenceBound + watchBlockForTests + 1500*time.Millisecond
			}
			e.wait(t, 10*time.Second, "Lost", func() bool { return e.count(blocklist.Lost) == 1 })
			if took := time.Since(cut); took > bound {
				t.Errorf("%s: Lost after %s, want within %s", mode, took, bound)
			}
			for _, p := range proxies {
				if err := p.Set(chaosproxy.Pass); err != nil {
					t.Fatal(err)
				}
			}
			e.wait(t, 10*time.Second, "Resumed", func() bool { return e.count(blocklist.Resumed) == 1 })
		})
	}
}

// TestWatchRingRerouted: a Ring that stops routing the stream to the shard
// the watch reads (a shard removed, or marked down by the ring's
// heartbeat) sends the stream's writes to another shard; the watch reports
// Lost, follows the stream, and reports Synced: it cannot prove what was
// written on the other shard.
func TestWatchRingRerouted(t *testing.T) {
	t.Parallel()
	ring, proxies := ringBehindProxies(t)
	s := redisstore.New(ring, redisstore.WithPrefix(redistest.Prefix(t)))
	e := watch(t, s)
	e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
	node, err := ring.GetShardClientForKey(s.Stream())
	if err != nil {
		t.Fatal(err)
	}
	rest := map[string]string{}
	for name, p := range proxies {
		if p.Addr() != node.Options().Addr {
			rest[name] = p.Addr()
		}
	}
	ring.SetAddrs(rest)
	e.wait(t, 5*time.Second, "Lost, then Synced", func() bool {
		return e.count(blocklist.Lost) == 1 && e.count(blocklist.Synced) == 2
	})
	if err := s.Revoke(t.Context(), "after", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.wait(t, 5*time.Second, "the announcement on the other shard", func() bool { _, ok := e.revoked["after"]; return ok })
}
