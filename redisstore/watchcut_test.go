package redisstore_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// proxied returns a proxy to addr, closed when the test ends.
func proxied(t *testing.T, addr string) *chaosproxy.Proxy {
	t.Helper()
	p, err := chaosproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// defaultClient is a client of addr with go-redis's default options
// (retries, five-second timeouts): the watch must not depend on them.
func defaultClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// cutCase is one way of losing announcements while a watcher is cut off.
type cutCase struct {
	name string
	// persistent: the server keeps its data across a restart (AOF, fsync
	// always).
	persistent bool
	// fresh: the watch starts before the stream exists.
	fresh bool
	// during runs while the watcher is cut off, with a writer of the
	// same prefix; it returns the ids it revoked.
	during func(t *testing.T, srv *testserver.Server, c *redis.Client, w *redisstore.Store, exp time.Time) []string
	// wantResumed: the watch can prove it missed nothing.
	wantResumed bool
}

func revokeN(t *testing.T, w *redisstore.Store, name string, n int, exp time.Time) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", name, i)
		if err := w.Revoke(t.Context(), ids[i], exp); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func restart(t *testing.T, srv *testserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}

var cutCases = []cutCase{
	{name: "few", wantResumed: true, during: func(t *testing.T, _ *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		return revokeN(t, w, "few", 20, exp)
	}},
	{name: "trimmed", during: func(t *testing.T, _ *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		return revokeN(t, w, "trim", 300, exp)
	}},
	// The case: nothing read yet, the watch at 0-0.
	{name: "fresh-trimmed", fresh: true, during: func(t *testing.T, _ *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		return revokeN(t, w, "trim", 300, exp)
	}},
	// A stream the watch never saw hold an entry: the watch made it (and
	// its marker), so it proves the gap empty like any other.
	{name: "fresh-few", fresh: true, wantResumed: true, during: func(t *testing.T, _ *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		return revokeN(t, w, "few", 3, exp)
	}},
	{name: "recreated", during: func(t *testing.T, _ *testserver.Server, c *redis.Client, w *redisstore.Store, exp time.Time) []string {
		ids := revokeN(t, w, "old", 3, exp)
		if err := c.Del(t.Context(), w.Stream()).Err(); err != nil {
			t.Fatal(err)
		}
		return append(ids, revokeN(t, w, "new", 3, exp)...)
	}},
	{name: "deleted", during: func(t *testing.T, _ *testserver.Server, c *redis.Client, w *redisstore.Store, exp time.Time) []string {
		ids := revokeN(t, w, "gone", 3, exp)
		if err := c.Del(t.Context(), w.Stream()).Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}},
	{name: "xdel", during: func(t *testing.T, _ *testserver.Server, c *redis.Client, w *redisstore.Store, exp time.Time) []string {
		ids := revokeN(t, w, "xdel", 3, exp)
		last, err := c.XRevRangeN(t.Context(), w.Stream(), "+", "-", 1).Result()
		if err != nil || len(last) != 1 {
			t.Fatal(last, err)
		}
		if err := c.XDel(t.Context(), w.Stream(), last[0].ID).Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}},
	// Redis without persistence loses everything in a restart; the
	// revocations made after it are the ones that matter.
	{name: "restart-volatile", during: func(t *testing.T, srv *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		revokeN(t, w, "lost", 3, exp)
		restart(t, srv)
		return revokeN(t, w, "after", 3, exp)
	}},
	{name: "restart-volatile-trimmed", during: func(t *testing.T, srv *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		restart(t, srv)
		return revokeN(t, w, "after", 300, exp)
	}},
	{name: "restart-persistent", persistent: true, wantResumed: true, during: func(t *testing.T, srv *testserver.Server, _ *redis.Client, w *redisstore.Store, exp time.Time) []string {
		ids := revokeN(t, w, "before", 3, exp)
		restart(t, srv)
		return append(ids, revokeN(t, w, "after", 3, exp)...)
	}},
}

// TestWatchCut cuts a watcher off from Redis through a proxy, loses
// announcements in each way a stream can be cut short, and heals: the
// watch reports Lost, then Resumed with every revocation of the cut
// delivered when it can prove nothing was missed, and Synced otherwise:
// never Resumed with an announcement missing.
func TestWatchCut(t *testing.T) {
	t.Parallel()
	for _, mode := range []chaosproxy.Mode{chaosproxy.Refuse, chaosproxy.AcceptClose} {
		for _, tc := range cutCases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				testWatchCut(t, tc, mode)
			})
		}
	}
}

func testWatchCut(t *testing.T, tc cutCase, mode chaosproxy.Mode) {
	var srv *testserver.Server
	if tc.persistent {
		srv = testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		srv = testserver.Redis(t)
	}
	proxy := proxied(t, srv.Addr())
	prefix := redistest.Prefix(t)
	opts := []redisstore.Option{redisstore.WithPrefix(prefix), redisstore.WithStreamMaxLen(5)}
	writerClient := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { writerClient.Close() })
	writer := redisstore.New(writerClient, opts...)
	watcher := redisstore.New(defaultClient(t, proxy.Addr()), opts...)
	exp := time.Now().Add(time.Hour)
	if !tc.fresh {
		revokeN(t, writer, "before", 3, exp)
	}
	e := watch(t, watcher)
	e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
	if !tc.fresh {
		e.wait(t, 2*time.Second, "the replay", func() bool { _, ok := e.revoked["before-2"]; return ok })
	}

	if err := proxy.Set(mode); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	e.wait(t, 2*time.Second, "Lost", func() bool { return e.count(blocklist.Lost) == 1 })
	// At once means by the failed read itself, not by the silence bound
	// that would also notice a frozen link: anything under the bound tells
	// the two apart, whatever the scheduling delay on a loaded machine.
	if took := time.Since(cut); took >= redisstore.WatchSilenceBound {
		t.Errorf("a closed connection was reported Lost after %s, want at once (before WatchSilenceBound, %s, which only a silent link needs)", took, redisstore.WatchSilenceBound)
	}
	ids := tc.during(t, srv, writerClient, writer, exp)
	if err := proxy.Set(chaosproxy.Pass); err != nil {
		t.Fatal(err)
	}
	e.wait(t, 5*time.Second, "Resumed or Synced", func() bool {
		return e.count(blocklist.Resumed)+e.count(blocklist.Synced) >= 2
	})
	e.mu.Lock()
	resumed := e.count(blocklist.Resumed) == 1
	var missing []string
	for _, id := range ids {
		if _, ok := e.revoked[id]; !ok {
			missing = append(missing, id)
		}
	}
	got := kinds(e.list)
	e.mu.Unlock()
	switch {
	case resumed && len(missing) > 0:
		t.Fatalf("Resumed with %d revocations of the cut not delivered (first %q); events %v", len(missing), missing[0], got)
	case resumed != tc.wantResumed:
		t.Errorf("after the heal: events %v, want Resumed=%v", got, tc.wantResumed)
	}
}

// TestWatchSilentServer: a server that stops answering, frozen with
// SIGSTOP or behind a proxy that holds every byte, is reported Lost within
// WatchSilenceBound, however the client was configured; a server killed
// with SIGKILL at once. Once it answers again the watch resumes.
func TestWatchSilentServer(t *testing.T) {
	t.Parallel()
	slack := 1500 * time.Millisecond // a loaded CI machine
	cases := []struct {
		name         string
		stop, resume func(t *testing.T, srv *testserver.Server, p *chaosproxy.Proxy)
		bound        time.Duration
	}{
		{"freeze", func(t *testing.T, _ *testserver.Server, p *chaosproxy.Proxy) { p.Set(chaosproxy.Freeze) },
			func(t *testing.T, _ *testserver.Server, p *chaosproxy.Proxy) { p.Set(chaosproxy.Pass) },
			redisstore.WatchSilenceBound + watchBlockForTests},
		{"sigstop", func(t *testing.T, srv *testserver.Server, _ *chaosproxy.Proxy) { signal(t, srv, syscall.SIGSTOP) },
			func(t *testing.T, srv *testserver.Server, _ *chaosproxy.Proxy) { signal(t, srv, syscall.SIGCONT) },
			redisstore.WatchSilenceBound + watchBlockForTests},
		{"sigkill", func(t *testing.T, srv *testserver.Server, _ *chaosproxy.Proxy) {
			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, srv *testserver.Server, _ *chaosproxy.Proxy) { restart(t, srv) }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
			p := proxied(t, srv.Addr())
			// A client that would wait a minute for a reply, and retry.
			client := redis.NewClient(&redis.Options{Addr: p.Addr(), ReadTimeout: time.Minute, MaxRetries: 10})
			t.Cleanup(func() { client.Close() })
			w := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
			if err := w.Revoke(t.Context(), "before", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			e := watch(t, w)
			e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
			tc.stop(t, srv, p)
			stopped := time.Now()
			e.wait(t, tc.bound+slack, "Lost", func() bool { return e.count(blocklist.Lost) == 1 })
			t.Logf("%s: Lost after %s", tc.name, time.Since(stopped).Round(time.Millisecond))
			tc.resume(t, srv, p)
			e.wait(t, 10*time.Second, "Resumed", func() bool { return e.count(blocklist.Resumed) == 1 })
		})
	}
}

// watchBlockForTests is the longest a blocking read waits for news: the
// read in flight when a server freezes may have just begun.
const watchBlockForTests = 250 * time.Millisecond

func signal(t *testing.T, srv *testserver.Server, sig syscall.Signal) {
	t.Helper()
	pid := srv.PID()
	if pid <= 0 {
		t.Fatal("server not running")
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	if sig == syscall.SIGSTOP {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	}
}
