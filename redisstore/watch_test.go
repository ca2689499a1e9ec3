package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// events collects what a watch reports, for tests to wait on.
type events struct {
	mu      sync.Mutex
	cond    *sync.Cond
	list    []blocklist.Event
	revoked map[string]time.Time
	block   chan struct{} // when not nil, fn waits on it (a slow subscriber)
}

func newEvents() *events {
	e := &events{revoked: map[string]time.Time{}}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *events) fn(ev blocklist.Event) {
	e.mu.Lock()
	block := e.block
	e.mu.Unlock()
	if block != nil {
		<-block
	}
	e.mu.Lock()
	e.list = append(e.list, ev)
	if ev.Kind == blocklist.Revoked {
		e.revoked[ev.JTI] = ev.Exp
	}
	e.cond.Broadcast()
	e.mu.Unlock()
}

// wait waits until ok holds for the events, or fails the test after d.
func (e *events) wait(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s; events: %v", d, what, kinds(e.list))
		}
		e.cond.Wait()
	}
}

// count returns how many events of kind k arrived (e.mu held).
func (e *events) count(k blocklist.EventKind) int {
	n := 0
	for _, ev := range e.list {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func kinds(list []blocklist.Event) []string {
	var out []string
	for _, ev := range list {
		if ev.Kind != blocklist.Revoked {
			out = append(out, ev.Kind.String())
		}
	}
	return out
}

// watch runs s.Watch until the test ends.
func watch(t *testing.T, s *redisstore.Store) *events {
	t.Helper()
	e := newEvents()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, e.fn) }()
	t.Cleanup(func() {
		cancel()
		e.mu.Lock()
		if e.block != nil {
			close(e.block)
			e.block = nil
		}
		e.mu.Unlock()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return within 5s of its context's end")
		}
	})
	return e
}

func testWatchDelivers(t *testing.T, a, b redis.UniversalClient) {
	prefix := redistest.Prefix(t)
	writer := redisstore.New(a, redisstore.WithPrefix(prefix))
	watcher := redisstore.New(b, redisstore.WithPrefix(prefix))
	e := watch(t, watcher)
	e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
	exp := time.Now().Add(time.Hour)
	for i := range 50 {
		jti := fmt.Sprintf("jti {%d}\x00\n*", i)
		if err := writer.Revoke(t.Context(), jti, exp); err != nil {
			t.Fatal(err)
		}
		// A generous bound: its latency is a benchmark's business, and a
		// loaded CI machine can stall a delivery for over a second.
		e.wait(t, 5*time.Second, "the revocation of "+jti, func() bool { _, ok := e.revoked[jti]; return ok })
		e.mu.Lock()
		got := e.revoked[jti]
		e.mu.Unlock()
		if got.Before(exp.Truncate(time.Millisecond)) || got.After(exp.Add(time.Second)) {
			t.Errorf("Exp of %q = %s, want %s", jti, got, exp)
		}
	}
	// RevokeOnce announces when it wins, and only then.
	if first, err := writer.RevokeOnce(t.Context(), "once", exp); err != nil || !first {
		t.Fatalf("RevokeOnce = %v, %v", first, err)
	}
	e.wait(t, 2*time.Second, "the RevokeOnce", func() bool { _, ok := e.revoked["once"]; return ok })
	// A past exp is not announced.
	if err := writer.Revoke(t.Context(), "past", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := writer.Revoke(t.Context(), "after-past", exp); err != nil {
		t.Fatal(err)
	}
	e.wait(t, 2*time.Second, "after-past", func() bool { _, ok := e.revoked["after-past"]; return ok })
	e.mu.Lock()
	_, past := e.revoked["past"]
	e.mu.Unlock()
	if past {
		t.Error("a revocation with a past exp was announced")
	}
}

func TestWatchDeliversStandalone(t *testing.T) {
	t.Parallel()
	srv := redisServer.Get(t)
	testWatchDelivers(t, redistest.Client(t, srv.Addr()), redistest.Client(t, srv.Addr()))
}

func TestWatchDeliversCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	testWatchDelivers(t, redistest.ClusterClient(t, c.Addrs()), redistest.ClusterClient(t, c.Addrs()))
}

// stall makes the watch's subscriber wait, from its next event on, until
// the returned function is called: the watch stops reading meanwhile.
func (e *events) stall() (resume func()) {
	ch := make(chan struct{})
	e.mu.Lock()
	e.block = ch
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.block = nil
		e.mu.Unlock()
		close(ch)
	}
}

// testWatchGap: while the subscriber is stalled on the announcement of
// "stalled", lose writes to the stream behind the watch's back; once it
// reads again, it must either deliver "missed" or report Synced (a gap it
// cannot replay), never carry on as if nothing was lost.
func testWatchGap(t *testing.T, lose func(t *testing.T, c *redis.Client, w *redisstore.Store, exp time.Time), opts ...redisstore.Option) {
	client := redistest.Client(t, redisServer.Get(t).Addr())
	opts = append([]redisstore.Option{redisstore.WithPrefix(redistest.Prefix(t))}, opts...)
	w := redisstore.New(client, opts...)
	e := watch(t, w)
	e.wait(t, 5*time.Second, "Synced", func() bool { return e.count(blocklist.Synced) == 1 })
	exp := time.Now().Add(time.Hour)
	for i := range 3 {
		if err := w.Revoke(t.Context(), fmt.Sprintf("before-%d", i), exp); err != nil {
			t.Fatal(err)
		}
	}
	e.wait(t, 2*time.Second, "before-2", func() bool { _, ok := e.revoked["before-2"]; return ok })

	resume := e.stall()
	if err := w.Revoke(t.Context(), "stalled", exp); err != nil {
		t.Fatal(err)
	}
	lose(t, client, w, exp)
	resume()
	e.wait(t, 5*time.Second, `"after", then "missed" or Synced`, func() bool {
		_, after := e.revoked["after"]
		_, missed := e.revoked["missed"]
		return after && (missed || e.count(blocklist.Synced) >= 2)
	})
}

func TestWatchGap(t *testing.T) {
	t.Parallel()
	t.Run("trimmed", func(t *testing.T) {
		t.Parallel()
		// MAXLEN ~ trims whole nodes of 100 entries: 500 revocations trim
		// "missed", announced right after "stalled".
		testWatchGap(t, func(t *testing.T, _ *redis.Client, w *redisstore.Store, exp time.Time) {
			for i := range 500 {
				jti := fmt.Sprintf("trim-%d", i)
				if i == 0 {
					jti = "missed"
				}
				if err := w.Revoke(t.Context(), jti, exp); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Revoke(t.Context(), "after", exp); err != nil {
				t.Fatal(err)
			}
		}, redisstore.WithStreamMaxLen(10))
	})
	t.Run("recreated", func(t *testing.T) {
		t.Parallel()
		// The stream is deleted (by hand, or evicted) and made again by
		// the next Revoke: its ids follow the watch's position.
		testWatchGap(t, func(t *testing.T, c *redis.Client, w *redisstore.Store, exp time.Time) {
			if err := w.Revoke(t.Context(), "missed", exp); err != nil {
				t.Fatal(err)
			}
			if err := c.Del(t.Context(), w.Stream()).Err(); err != nil {
				t.Fatal(err)
			}
			if err := w.Revoke(t.Context(), "after", exp); err != nil {
				t.Fatal(err)
			}
		})
	})
}
