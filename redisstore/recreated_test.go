package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// TestWatchRecreatedFromMissing: a watch that started on a missing stream
// (nothing ever announced) and whose link freezes for less than
// WatchSilenceBound (so no Lost) while the stream is made, announced on,
// deleted and made again, must not take the new stream's entries for
// everything: it delivers the lost announcement or reports Synced again.
// Before the fix it read the new stream from 0-0, counted exactly its
// entries-added, and took that for a proof (the Cluster chaos test's
// "freeze, delete" miss of a replica).
func TestWatchRecreatedFromMissing(t *testing.T) {
	srv := testserver.Redis(t)
	p, err := chaosproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	bClient := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { bClient.Close() })
	s := redisstore.New(bClient, redisstore.WithPrefix(redistest.Prefix(t)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := newEvents()
	defer startWatch(ctx, s, ev.fn).stop()
	ev.wait(t, 5*time.Second, "the first Synced", func() bool { return ev.count(blocklist.Synced) == 1 })
	time.Sleep(400 * time.Millisecond)
	if err := p.Set(chaosproxy.Freeze); err != nil {
		t.Fatal(err)
	}
	// The blocking read in flight ends (its reply held) before the damage.
	time.Sleep(350 * time.Millisecond)
	exp := time.Now().Add(time.Hour).UnixMilli()
	stream := s.Stream()
	for _, cmd := range []redis.Cmder{
		admin.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"jti", "lost", "exp", exp}}),
		admin.Del(ctx, stream),
		admin.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"jti", "seen", "exp", exp}}),
	} {
		if err := cmd.Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := p.Set(chaosproxy.Pass); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "the announcement of the new stream", func() bool { _, ok := ev.revoked["seen"]; return ok })
	time.Sleep(time.Second) // a few proofs
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.count(blocklist.Lost) != 0 {
		t.Logf("the freeze was noticed (Lost): the test did not exercise the hole; events %v", kinds(ev.list))
	}
	if _, ok := ev.revoked["lost"]; !ok && ev.count(blocklist.Synced) < 2 {
		t.Fatalf("the watch missed the announcement of \"lost\" (a deleted incarnation of the stream) without reporting Synced; events: %v", kinds(ev.list))
	}
}

// watchedStream starts a watch of a fresh prefix holding n announcements
// (through Revoke) and waits until it delivered them and proved them: a
// few snapshots later. admin talks to the server directly.
func watchedStream(t *testing.T, addr string, n int) (*redisstore.Store, *events) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
	exp := time.Now().Add(time.Hour)
	for i := range n {
		if err := s.Revoke(t.Context(), fmt.Sprintf("before-%d", i), exp); err != nil {
			t.Fatal(err)
		}
	}
	ev := watch(t, s)
	ev.wait(t, 5*time.Second, "the replay", func() bool { _, ok := ev.revoked[fmt.Sprintf("before-%d", n-1)]; return ok })
	time.Sleep(3 * watchBlockForTests) // a proof or two
	return s, ev
}

// addExact appends announcements of ids to the stream in one MULTI/EXEC,
// trimmed exactly (not ~) to maxLen entries, after deleting the stream
// first when del is set.
func addExact(t *testing.T, admin *redis.Client, stream string, del bool, maxLen int64, ids ...string) {
	t.Helper()
	exp := time.Now().Add(time.Hour).UnixMilli()
	_, err := admin.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
		if del {
			p.Del(t.Context(), stream)
		}
		for _, id := range ids {
			p.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, MaxLen: maxLen, Values: []any{"jti", id, "exp", exp}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wantDeliveredOrSynced fails unless every id was delivered or the watch
// reported Synced again (a gap it cannot replay), within a few proofs.
func wantDeliveredOrSynced(t *testing.T, ev *events, ids ...string) {
	t.Helper()
	time.Sleep(4 * watchBlockForTests)
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.count(blocklist.Synced) >= 2 {
		return
	}
	for _, id := range ids {
		if _, ok := ev.revoked[id]; !ok {
			t.Fatalf("the watch missed the announcement of %q without reporting Synced; events: %v", id, kinds(ev.list))
		}
	}
}

// TestWatchRecreatedSameCount: the stream is deleted and made again in one
// MULTI/EXEC (no watch can see the moment between), with exactly as many
// entries trimmed unread as the old stream had added, so entries-added
// equals what the watch counted. Counters alone took the new stream for
// the old (the chaos test's miss after a restart that lost the data); the
// stream's marker tells them apart.
func TestWatchRecreatedSameCount(t *testing.T) {
	t.Parallel()
	srv := redisServer.Get(t)
	admin := redistest.Client(t, srv.Addr())
	s, ev := watchedStream(t, srv.Addr(), 3)
	addExact(t, admin, s.Stream(), true, 2, "gone-0", "gone-1", "gone-2", "kept-0", "kept-1")
	wantDeliveredOrSynced(t, ev, "gone-0", "gone-1", "gone-2", "kept-0", "kept-1")
}

// TestWatchRecreatedAtomically: on a prefix with no stream yet, a stream is
// made, announced on and deleted, and made again, all in one MULTI/EXEC,
// faster than any bound on time could notice.
func TestWatchRecreatedAtomically(t *testing.T) {
	t.Parallel()
	srv := redisServer.Get(t)
	admin := redistest.Client(t, srv.Addr())
	client := redistest.Client(t, srv.Addr())
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
	ev := watch(t, s)
	ev.wait(t, 5*time.Second, "Synced", func() bool { return ev.count(blocklist.Synced) == 1 })
	exp := time.Now().Add(time.Hour).UnixMilli()
	stream := s.Stream()
	_, err := admin.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
		p.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []any{"jti", "lost", "exp", exp}})
		p.Del(t.Context(), stream)
		p.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []any{"jti", "seen", "exp", exp}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDeliveredOrSynced(t, ev, "lost", "seen")
}

// TestWatchRolledBackSameCount: Redis restarts from a snapshot of the same
// incarnation of the stream (its marker included) taken before the last
// two announcements the watch delivered, then takes new ones, trimmed
// exactly so that entries-added again equals what the watch counted. The
// watch must see that entries after what it read were removed unread.
func TestWatchRolledBackSameCount(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	p := proxied(t, srv.Addr())
	admin := redistest.Client(t, srv.Addr())
	s, ev := watchedStream(t, p.Addr(), 3)
	if err := admin.Save(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for _, id := range []string{"forgotten-0", "forgotten-1"} {
		if err := s.Revoke(t.Context(), id, exp); err != nil {
			t.Fatal(err)
		}
	}
	ev.wait(t, 2*time.Second, "forgotten-1", func() bool { _, ok := ev.revoked["forgotten-1"]; return ok })
	time.Sleep(3 * watchBlockForTests) // proved: the watch counts 5
	if err := p.Set(chaosproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	restart(t, srv) // back to 3 entries added
	admin = redistest.Client(t, srv.Addr())
	addExact(t, admin, s.Stream(), false, 5, "new-0", "new-1", "new-2", "new-3", "new-4", "new-5", "new-6")
	if err := p.Set(chaosproxy.Pass); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "Resumed or Synced", func() bool {
		return ev.count(blocklist.Resumed)+ev.count(blocklist.Synced) >= 2
	})
	wantDeliveredOrSynced(t, ev, "new-0", "new-1", "new-2", "new-3", "new-4", "new-5", "new-6")
}

// TestWatchWithoutGroupRight: a user whose ACL forbids XGROUP CREATE
// cannot mark the stream, so its watch could never prove anything: Watch
// returns an error that says so instead of retrying in silence.
func TestWatchWithoutGroupRight(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	admin := redistest.Client(t, srv.Addr())
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "reader", "on", ">secret", "~*", "&*", "+@all", "-xgroup").Err(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "reader", Password: "secret"})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var got []blocklist.EventKind
	err := s.Watch(ctx, func(ev blocklist.Event) { got = append(got, ev.Kind) })
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "XGROUP") {
		t.Fatalf("Watch = %v (context: %v); want an error naming XGROUP, at once", err, ctx.Err())
	}
	for _, k := range got {
		if k == blocklist.Synced || k == blocklist.Resumed {
			t.Fatalf("events %v: a watch that cannot mark the stream reported it live", got)
		}
	}
}
