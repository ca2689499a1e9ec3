package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
	"github.com/redis/go-redis/v9"
)

// redisServer is the one standalone redis-server the package's tests and
// benchmarks share; each user keeps to its own key prefix. Tests that kill
// a server start their own.
var redisServer = testserver.SharedRedis()

func TestMain(m *testing.M) { redistest.Main(m, redisServer) }

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The stores of the Unavailable subtests use clients that give up at once
// (one dial, no retry): a default client keeps retrying a dead server for
// about two seconds, so each call would run to the suite's deadline and the
// suite would take longer for nothing. That the deadline bounds a default
// client is checked by TestServerKilledAndRestarted.

// killedStore returns a store whose redis-server was started and then
// killed, the client having talked to it first.
func killedStore(t *testing.T) blocklist.Store {
	srv := testserver.Redis(t)
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client)
	if err := s.Revoke(t.Context(), "before-the-kill", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceStandalone(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redisServer.Get(t).Addr())
	peer := redistest.Client(t, redisServer.Get(t).Addr())
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
	}, conformance.WithUnavailable(killedStore), conformance.WithPeer(func(t *testing.T, s blocklist.Store) blocklist.Store {
		return redisstore.New(peer, redisstore.WithPrefix(s.(*redisstore.Store).Prefix()))
	}))
}

// TestConformanceCluster runs the suite on a cluster of 3 masters and 3
// replicas, persistent, as production clusters run: once plain, and once
// with every write waiting for its replica (WithWait), on the same cluster.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	client := redistest.ClusterClient(t, cluster.Addrs())
	peer := redistest.ClusterClient(t, cluster.Addrs())
	withPeer := conformance.WithPeer(func(t *testing.T, s blocklist.Store) blocklist.Store {
		return redisstore.New(peer, redisstore.WithPrefix(s.(*redisstore.Store).Prefix()))
	})
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, func(t *testing.T) blocklist.Store {
			return redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
		}, withPeer, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
			client := redis.NewClusterClient(&redis.ClusterOptions{
				Addrs:                 []string{closedAddr(t), closedAddr(t), closedAddr(t)},
				ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1,
			})
			t.Cleanup(func() { client.Close() })
			return redisstore.New(client)
		}))
	})
	t.Run("WithWait", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, func(t *testing.T) blocklist.Store {
			return redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)), redisstore.WithWait(1, 2*time.Second))
		}, withPeer)
	})
}

// TestRing: a *redis.Ring over two servers works too. The suite already
// runs on a standalone server and on a cluster; this checks that the ring
// spreads revocations over its shards and that the transaction of Revoke
// stays monotonic through it.
func TestRing(t *testing.T) {
	t.Parallel()
	shards := map[string]string{"a": testserver.Redis(t).Addr(), "b": testserver.Redis(t).Addr()}
	ring := redis.NewRing(&redis.RingOptions{Addrs: shards, ContextTimeoutEnabled: true})
	t.Cleanup(func() { ring.Close() })
	s := redisstore.New(ring)
	ctx := t.Context()
	short, long := time.Now().Add(time.Minute), time.Now().Add(time.Hour)
	for i := range 40 {
		jti := fmt.Sprintf("ring-%d", i)
		if err := s.Revoke(ctx, jti, long); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, jti, short); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
			t.Fatalf("IsRevoked(%q) = %v, %v; want true", jti, ok, err)
		}
		if until, err := s.RevokedUntil(ctx, jti); err != nil || until.UnixMilli() < long.UnixMilli() {
			t.Fatalf("RevokedUntil(%q) = %s, %v; want %s: a shorter exp shortened it", jti, until, err, long)
		}
		if ok, err := s.IsRevoked(ctx, jti+"-never"); err != nil || ok {
			t.Fatalf("IsRevoked(%q) = %v, %v; want false", jti+"-never", ok, err)
		}
	}
	for name, addr := range shards {
		if n, err := redistest.Client(t, addr).DBSize(ctx).Result(); err != nil || n == 0 {
			t.Errorf("shard %s holds %d keys, %v: the ring does not spread revocations", name, n, err)
		}
	}
}

// TestClusterSpreadsKeys checks that revocations land on every master, and
// that ids with hash tags are found wherever their tag sends them.
func TestClusterSpreadsKeys(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	client := redistest.ClusterClient(t, cluster.Addrs())
	s := redisstore.New(client)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	var ids []string
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("id-%d", i), fmt.Sprintf("{tag}%d", i), fmt.Sprintf("x{%d}y", i))
	}
	for _, id := range ids {
		if err := s.Revoke(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if ok, err := s.IsRevoked(ctx, id); err != nil || !ok {
			t.Fatalf("IsRevoked(%q) = %v, %v; want true", id, ok, err)
		}
	}
	for _, node := range cluster.Nodes {
		n, err := redistest.Client(t, node.Addr()).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("master %s holds no revocation: keys are not spread over the slots", node.Addr())
		}
	}
}

// TestKeyLayout pins the public layout: key prefix+jti, value "1", expiry
// at exp rounded up to the millisecond, readable and writable by any client.
func TestKeyLayout(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redisServer.Get(t).Addr())
	ctx := t.Context()
	s := redisstore.New(client)
	prefix := redistest.Prefix(t)
	sp := redisstore.New(client, redisstore.WithPrefix(prefix))

	base := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for name, c := range map[string]struct {
		exp    time.Time
		wantMS int64
	}{
		"whole-ms":  {base, base.UnixMilli()},
		"half-ms":   {base.Add(500 * time.Microsecond), base.UnixMilli() + 1},
		"one-ns":    {base.Add(time.Nanosecond), base.UnixMilli() + 1},
		"almost-ms": {base.Add(999_999 * time.Nanosecond), base.UnixMilli() + 1},
	} {
		jti := prefix + "layout-" + name // the default prefix store: keep it unique too
		if err := s.Revoke(ctx, jti, c.exp); err != nil {
			t.Fatal(err)
		}
		key := redisstore.DefaultPrefix + jti
		if v, err := client.Get(ctx, key).Result(); err != nil || v != "1" {
			t.Errorf("%s: GET %q = %q, %v; want \"1\"", name, key, v, err)
		}
		ms, err := client.Do(ctx, "pexpiretime", key).Int64()
		if err != nil || ms != c.wantMS {
			t.Errorf("%s: PEXPIRETIME = %d, %v; want %d (exp rounded up to the ms)", name, ms, err, c.wantMS)
		}
		until, err := s.RevokedUntil(ctx, jti)
		if err != nil || until.UnixMilli() != c.wantMS || until.Before(c.exp) {
			t.Errorf("%s: RevokedUntil = %s, %v; want %d ms, not before %s", name, until, err, c.wantMS, c.exp)
		}
	}

	// WithPrefix: exactly prefix+jti, nothing escaped, binary-safe.
	odd := "a{b}\x00 *\xff"
	if err := sp.Revoke(ctx, odd, base); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Exists(ctx, prefix+odd).Result(); err != nil || n != 1 {
		t.Errorf("EXISTS prefix+jti = %d, %v; want 1", n, err)
	}

	// A revocation written by another client with the documented commands
	// is seen by the store, and stays monotonic.
	other := "written-elsewhere"
	later := base.Add(time.Hour)
	for _, exp := range []time.Time{later, base} { // the shorter one second: must not shorten
		_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "pexpireat", prefix+other, exp.UnixMilli(), "gt")
			p.Do(ctx, "set", prefix+other, "1", "pxat", exp.UnixMilli(), "nx")
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	if until, err := sp.RevokedUntil(ctx, other); err != nil || !until.Equal(later) {
		t.Errorf("RevokedUntil of a revocation written by raw commands = %s, %v; want %s", until, err, later)
	}

	// A key without an expiry is revoked forever, and Revoke leaves it so.
	if err := client.Set(ctx, prefix+"persistent", "anything", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := sp.Revoke(ctx, "persistent", base); err != nil {
		t.Fatal(err)
	}
	if ok, err := sp.IsRevoked(ctx, "persistent"); err != nil || !ok {
		t.Errorf("IsRevoked of a key without expiry = %v, %v; want true", ok, err)
	}
	if until, err := sp.RevokedUntil(ctx, "persistent"); err != nil || !until.Equal(time.UnixMilli(math.MaxInt64)) {
		t.Errorf("RevokedUntil of a key without expiry = %s, %v; want the latest expiry Redis holds", until, err)
	}
	if ttl, err := client.PTTL(ctx, prefix+"persistent").Result(); err != nil || ttl != -1 {
		t.Errorf("PTTL after Revoke of a key without expiry = %v, %v; want -1 (kept forever)", ttl, err)
	}
}

func TestInvalidStreamMaxLenPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "redisstore: WithStreamMaxLen(0)") {
			t.Errorf("New(WithStreamMaxLen(0)) recovered %v, want a panic naming the option", p)
		}
	}()
	redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), redisstore.WithStreamMaxLen(0))
}

func TestNilClientPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "redisstore: New: nil client") {
			t.Errorf("New(nil) recovered %v, want a panic naming the nil client", p)
		}
	}()
	redisstore.New(nil)
}

func TestErrorsNamePackage(t *testing.T) {
	t.Parallel()
	s := redisstore.New(redistest.Client(t, closedAddr(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.IsRevoked(ctx, "x")
	if err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") {
		t.Errorf("IsRevoked error = %v; want one starting with \"redisstore: \"", err)
	}
	_, err = s.IsRevoked(ctx, "")
	if !errors.Is(err, blocklist.ErrInvalidID) || !strings.HasPrefix(err.Error(), "redisstore: ") {
		t.Errorf("IsRevoked(\"\") error = %v; want ErrInvalidID wrapped by redisstore", err)
	}
}

// TestServerKilledAndRestarted kills the server under load: every answer
// about a revoked id is "revoked" or an error, errors come within the
// context's deadline, and after a restart on the same port the same store
// works again.
func TestServerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := redisstore.New(redistest.Client(t, srv.Addr()))
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Revoke(ctx, "revoked", exp); err != nil {
		t.Fatal(err)
	}

	// Readers hammer the revoked id through the kill and the restart.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var answers, failures atomic.Int64
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				ok, err := s.IsRevoked(c, "revoked")
				cancel()
				switch {
				case err != nil:
					failures.Add(1)
				case !ok:
					t.Error("IsRevoked = (false, nil) for a revoked id while the server was killed or restarting")
				default:
					answers.Add(1)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}

	const deadline = 500 * time.Millisecond
	for name, call := range map[string]func(context.Context) error{
		"Revoke": func(c context.Context) error { return s.Revoke(c, "while-down", exp) },
		"IsRevoked": func(c context.Context) error {
			ok, err := s.IsRevoked(c, "revoked")
			if err == nil {
				t.Errorf("IsRevoked with the server killed = %v, nil; want an error", ok)
			}
			return err
		},
		"RevokedUntil": func(c context.Context) error { _, err := s.RevokedUntil(c, "revoked"); return err },
	} {
		c, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		err := call(c)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Errorf("%s with the server killed: no error", name)
		} else if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s error %q does not name the package", name, err)
		}
		// The bound is the deadline plus scheduling slack, not a timing goal.
		if took > deadline+500*time.Millisecond {
			t.Errorf("%s took %s with the server killed, past its %s deadline", name, took, deadline)
		}
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// go-redis reconnects by itself; give it a few seconds to notice.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		c, cancel := context.WithTimeout(waitCtx, time.Second)
		ok, err := s.IsRevoked(c, "revoked")
		cancel()
		if err == nil {
			if !ok {
				t.Fatal("the revocation was lost in the restart despite appendfsync always")
			}
			break
		}
		if waitCtx.Err() != nil {
			t.Fatalf("the store did not recover after the server restarted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	if answers.Load() == 0 || failures.Load() == 0 {
		t.Logf("readers saw %d answers and %d failures", answers.Load(), failures.Load())
	}

	if err := s.Revoke(ctx, "after-restart", exp); err != nil {
		t.Fatalf("Revoke after the restart: %v", err)
	}
	if ok, err := s.IsRevoked(ctx, "after-restart"); err != nil || !ok {
		t.Fatalf("IsRevoked after the restart = %v, %v; want true", ok, err)
	}
	if until, err := s.RevokedUntil(ctx, "revoked"); err != nil || until.UnixMilli() < exp.UnixMilli() {
		t.Fatalf("RevokedUntil after the restart = %s, %v; want %s", until, err, exp)
	}
}

// TestDurability: with appendfsync always, every acknowledged Revoke
// survives SIGKILL and restart, extensions included.
func TestDurability(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := redisstore.New(redistest.Client(t, srv.Addr()))
	ctx := t.Context()
	const n = 300
	now := time.Now()
	exps := make([]time.Time, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		exps[i] = now.Add(time.Hour + time.Duration(i)*time.Second + 123456*time.Nanosecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			jti := fmt.Sprintf("durable-%d", i)
			if i%3 == 0 { // an extension must survive too
				if err := s.Revoke(ctx, jti, now.Add(time.Minute)); err != nil {
					errs <- err
					return
				}
			}
			errs <- s.Revoke(ctx, jti, exps[i])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait until the store reaches the restarted server.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, err := s.IsRevoked(waitCtx, "probe")
		if err == nil {
			break
		}
		if waitCtx.Err() != nil {
			t.Fatalf("the store did not recover after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range n {
		jti := fmt.Sprintf("durable-%d", i)
		until, err := s.RevokedUntil(ctx, jti)
		if err != nil {
			t.Fatal(err)
		}
		if until.Before(exps[i]) || until.After(exps[i].Add(time.Millisecond)) {
			t.Errorf("after kill -9 and restart, RevokedUntil(%q) = %s, want %s", jti, until, exps[i])
		}
	}
}
