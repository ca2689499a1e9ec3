package cached_test

// The watch's behaviour in process: cached over memorystore, whose watch
// reports every event a watch of redisstore reports (CutWatches cuts it,
// WithLogMaxLen bounds what a cut watch can catch up on), inside
// testing/synctest bubbles, so "at once", "for d" and "after d" are exact
// and no test waits on the machine's load. redis_test.go and
// partition_test.go prove the same behaviours once each on a real server.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// liveOver returns one app instance, inside a bubble: a cached Store over
// next whose "not revoked" answers are kept for an hour (watch or no
// watch), once its watch is live (in replica mode, the replica loaded).
func liveOver(t *testing.T, next blocklist.Store, opts ...cached.Option) *cached.Store {
	t.Helper()
	opts = append([]cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithWatchNegativeTTL(time.Hour)}, opts...)
	c := newCached(t, next, opts...)
	synctest.Wait()
	if st := c.Stats(); st.Watch != cached.WatchLive {
		t.Fatalf("watch %s once started, want live", st.Watch)
	}
	return c
}

// With every option at its default, a live watch keeps "not revoked"
// answers for DefaultWatchNegativeTTL: the second check of an id is a
// hit, not a call to the next Store, until then.
func TestWatchDefaultsCacheNegatives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCached(t, newMemory(t))
		synctest.Wait()
		for range 3 {
			mustRevoked(t, c, "never-revoked", false, "never revoked")
		}
		if st := c.Stats(); st.BackendCalls != 1 || st.Hits != 2 {
			t.Errorf("three checks of one id with the watch live: %d backend calls and %d hits, want 1 and 2", st.BackendCalls, st.Hits)
		}
		time.Sleep(cached.DefaultWatchNegativeTTL - 1)
		mustRevoked(t, c, "never-revoked", false, "within DefaultWatchNegativeTTL")
		if st := c.Stats(); st.BackendCalls != 1 {
			t.Errorf("%d backend calls within DefaultWatchNegativeTTL, want 1", st.BackendCalls)
		}
		time.Sleep(1)
		mustRevoked(t, c, "never-revoked", false, "asked again")
		if st := c.Stats(); st.BackendCalls != 2 {
			t.Errorf("%d backend calls after DefaultWatchNegativeTTL, want 2", st.BackendCalls)
		}
	})
}

// A revocation made through instance A reaches instance B by the watch
// before any time passes, although B keeps "not revoked" answers for an
// hour, with its exact exp, and without B asking the next Store.
func TestPropagation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newMemory(t)
		a := liveOver(t, m)
		b := liveOver(t, m)
		start := time.Now()
		for i := range 20 {
			jti := fmt.Sprintf("token-%d", i)
			exp := time.Now().Add(time.Hour + time.Duration(i)*time.Nanosecond)
			mustRevoked(t, b, jti, false, "not revoked yet: cached for an hour")
			mustRevoke(t, a, jti, exp)
			mustRevoked(t, a, jti, true, "revoked through A: seen on A at once")
			synctest.Wait()
			calls := b.Stats().BackendCalls
			mustRevoked(t, b, jti, true, "delivered to B by the watch")
			if got := b.Stats().BackendCalls; got != calls {
				t.Errorf("B asked the next Store about %s: the watch did not deliver it", jti)
			}
			// The watch's exp is a lower bound (an earlier revocation may
			// last longer): RevokedUntil reads the end.
			if until, err := b.RevokedUntil(ctx, jti); err != nil || !until.Equal(exp) {
				t.Errorf("B's RevokedUntil(%s) = %v, %v; want %v", jti, until, err, exp)
			}
		}
		if !time.Now().Equal(start) {
			t.Errorf("%v passed in the bubble: a delivery waited on a timer", time.Since(start))
		}
		if st := b.Stats(); st.WatchEvents != 20 || st.Watch != cached.WatchLive || st.WatchSyncs != 1 {
			t.Errorf("B's Stats = %+v, want 20 events, live, one sync", st)
		}
	})
}

// unannounced is a memorystore whose watch reads another memorystore
// (feed): a revocation written into the first alone is one made without
// its announcement, like an outside writer that leaves out the XADD of
// redisstore's recipe; written into both, it is announced.
type unannounced struct {
	*memorystore.Store
	feed *memorystore.Store
}

func (u unannounced) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return u.feed.Watch(ctx, fn)
}

// While the watch is live, an announced revocation is seen at once, even
// over a cached "not revoked"; one written without its announcement is
// seen when that answer ends, WatchNegativeTTL after it was read, not
// NegativeTTL and not before (TestOutOfBandWriterRecipe writes the
// announced one with redis-cli).
func TestWatchNegativeTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		data, feed := newMemory(t), newMemory(t)
		const ttl = 10 * time.Second
		b := liveOver(t, unannounced{data, feed}, cached.WithWatchNegativeTTL(ttl))
		for _, jti := range []string{"announced", "silent"} {
			mustRevoked(t, b, jti, false, "cached for WatchNegativeTTL")
		}
		exp := time.Now().Add(time.Hour)
		for _, s := range []*memorystore.Store{data, feed} {
			if err := s.Revoke(ctx, "announced", exp); err != nil {
				t.Fatal(err)
			}
		}
		if err := data.Revoke(ctx, "silent", exp); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mustRevoked(t, b, "announced", true, "announced: seen at once")
		time.Sleep(ttl - 1)
		mustRevoked(t, b, "silent", false, "not announced: the cached answer holds for WatchNegativeTTL")
		time.Sleep(1)
		mustRevoked(t, b, "silent", true, "WatchNegativeTTL has passed")
	})
}

// TestCut: instance B's watch is cut while instance A goes on revoking in
// the shared store, with B holding "not revoked" for an hour for every one
// of those ids. While cut, B reads the store for every id it does not know
// revoked; after the heal it catches up on what it missed: by the replay
// (Resumed), or, when more was revoked than the log holds, by a resync
// (Synced; a replica reloads), never from an answer cached before the
// cut. In every phase B answers "revoked" for every id whose Revoke
// returned.
func TestCut(t *testing.T) {
	inBubbles(t, "replica", "gap", testCutInProcess)
}

func testCutInProcess(t *testing.T, replica, gap bool) {
	ctx := context.Background()
	const logMax = 50
	m := newMemory(t, memorystore.WithLogMaxLen(logMax))
	a := liveOver(t, m)
	var opts []cached.Option
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	b := liveOver(t, m, opts...)
	exp := time.Now().Add(time.Hour)
	n := logMax / 2 // revocations during the cut: within the log...
	if gap {
		n = logMax + 1 // ...or beyond it
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("cut-%d", i))
	}
	for _, jti := range ids {
		mustRevoked(t, b, jti, false, "cached as not revoked, for an hour")
	}
	mustRevoke(t, a, "before", exp)
	synctest.Wait()

	restore := m.CutWatches()
	synctest.Wait()
	if st := b.Stats(); st.Watch != cached.WatchLost || st.ReplicaReady {
		t.Fatalf("B after the cut: %+v, want lost and no replica answering", st)
	}
	// A revokes every id; B checks every other one while cut, and must
	// read it from the store; the rest it learns after the heal.
	for i, jti := range ids {
		mustRevoke(t, a, jti, exp)
		if i%2 == 0 {
			mustRevoked(t, b, jti, true, "revoked while B is cut: read from the store")
		}
	}
	mustRevoked(t, b, "never", false, "never revoked")
	if err := m.Revoke(ctx, "never", exp); err != nil { // straight into the store
		t.Fatal(err)
	}
	mustRevoked(t, b, "never", true, "no \"not revoked\" is cached while the watch is lost")
	mustRevoked(t, b, "before", true, "revoked before the cut")

	restore()
	synctest.Wait()
	st := b.Stats()
	wantSyncs, wantLoads := uint64(1), uint64(0)
	if gap {
		wantSyncs = 2
	}
	if replica {
		wantLoads = wantSyncs
	}
	if st.Watch != cached.WatchLive || st.WatchSyncs != wantSyncs || st.ReplicaLoads != wantLoads || st.ReplicaReady != replica {
		t.Fatalf("B after the heal: %+v, want live, %d syncs, %d replica loads", st, wantSyncs, wantLoads)
	}
	if replica && st.ReplicaSize != n+2 {
		t.Errorf("replica holds %d entries, want %d", st.ReplicaSize, n+2)
	}
	calls := st.BackendCalls
	for _, jti := range ids {
		mustRevoked(t, b, jti, true, "revoked while B was cut")
	}
	// Resumed: the replay delivered every id. Synced: the ids B did not
	// check while cut are read from the store (a replica reloaded them).
	wantCalls := uint64(0)
	if gap && !replica {
		wantCalls = uint64(n / 2)
	}
	if got := b.Stats().BackendCalls - calls; got != wantCalls {
		t.Errorf("checks after the heal made %d backend calls, want %d", got, wantCalls)
	}
	mustRevoked(t, b, "before", true, "revoked before the cut")
	mustRevoked(t, b, "after", false, "never revoked")
	mustRevoke(t, a, "after", exp)
	synctest.Wait()
	mustRevoked(t, b, "after", true, "the watch delivers again")
}

// revokeEach revokes ids in s from 8 goroutines and returns the first
// error.
func revokeEach(s blocklist.Store, ids []string, exp time.Time) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 8 {
				if err := s.Revoke(context.Background(), ids[i], exp); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// A replica started after 10,000 revocations answers every one of them,
// and ids never revoked, without a call to the next Store; one started
// while revocations keep coming misses none.
func TestReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		exp := time.Now().Add(time.Hour)
		ids := make([]string, 10_000)
		for i := range ids {
			ids[i] = fmt.Sprintf("replica-%d", i)
		}
		if err := revokeEach(m, ids, exp); err != nil {
			t.Fatal(err)
		}
		b := liveOver(t, m, cached.WithReplica())
		for i, jti := range ids {
			mustRevoked(t, b, jti, true, "revoked before the replica started")
			mustRevoked(t, b, fmt.Sprintf("never-%d", i), false, "never revoked")
		}
		if st := b.Stats(); st.BackendCalls != 0 || st.ReplicaSize != len(ids) || !st.ReplicaReady {
			t.Errorf("replica Stats = %+v, want no backend call and %d entries", st, len(ids))
		}

		more := make([]string, 3000)
		for i := range more {
			more[i] = fmt.Sprintf("stream-%d", i)
		}
		done := make(chan error, 1)
		go func() { done <- revokeEach(m, more, exp) }()
		c := newCached(t, m, cached.WithReplica()) // loads while revocations come
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for _, r := range []*cached.Store{b, c} {
			if st := r.Stats(); st.ReplicaSize != len(ids)+len(more) || !st.ReplicaReady {
				t.Errorf("replica Stats = %+v, want %d entries", st, len(ids)+len(more))
			}
			for _, jti := range more {
				mustRevoked(t, r, jti, true, "revoked while the replica started")
			}
			if st := r.Stats(); st.BackendCalls != 0 {
				t.Errorf("a replica made %d backend calls, want 0", st.BackendCalls)
			}
		}
	})
}

func TestReplicaNeedsWatchAndScan(t *testing.T) {
	if _, err := cached.New(plainStore{newMemory(t)}, cached.WithReplica()); err == nil {
		t.Error("WithReplica over a Store with no watch: no error")
	}
	if _, err := cached.New(newMemory(t), cached.WithReplica(), cached.WithoutWatch()); err == nil {
		t.Error("WithReplica with WithoutWatch: no error")
	}
	if _, err := cached.New(newMemory(t), cached.WithWatchNegativeTTL(-time.Second)); err == nil {
		t.Error("WithWatchNegativeTTL(-1s): no error")
	}
	c := newCached(t, newMemory(t), cached.WithoutWatch())
	if st := c.Stats(); st.Watch != cached.WatchOff {
		t.Errorf("WithoutWatch: Stats.Watch = %s", st.Watch)
	}
}

// slowUntil is a memorystore whose first RevokedUntil of one id reads the
// store, then waits for a gate before answering: a lookup that read the
// backend just before a revocation arrived.
type slowUntil struct {
	*memorystore.Store
	id      string
	once    sync.Once
	reading chan struct{} // closed once the slow read has read the store
	gate    chan struct{} // the slow read answers once this is closed
}

func (s *slowUntil) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	until, err := s.Store.RevokedUntil(ctx, jti)
	if jti == s.id {
		s.once.Do(func() {
			close(s.reading)
			<-s.gate
		})
	}
	return until, err
}

// A revocation delivered by the watch while a lookup of the same id is in
// flight, and evicted before that lookup ends, must not be replaced by the
// lookup's stale "not revoked".
func TestWatchedRevocationEvictedDuringLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newMemory(t)
		slow := &slowUntil{Store: m, id: "x", reading: make(chan struct{}), gate: make(chan struct{})}
		c := liveOver(t, slow, cached.WithSize(1))

		done := make(chan error, 1)
		go func() { _, err := c.IsRevoked(ctx, "x"); done <- err }()
		<-slow.reading                                                        // the lookup has read "not revoked"
		if err := m.Revoke(ctx, "x", time.Now().Add(time.Hour)); err != nil { // another instance
			t.Fatal(err)
		}
		synctest.Wait()
		if st := c.Stats(); st.WatchEvents != 1 {
			t.Fatalf("the watch delivered %d events, want 1", st.WatchEvents)
		}
		mustRevoked(t, c, "y", false, "evicts x: the cache holds one entry")
		close(slow.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mustRevoked(t, c, "x", true, "revoked by the watch while the stale lookup was in flight")
	})
}

// failingLookups is a memorystore whose lookups and writes fail while fail
// is set, and whose watch goes on working until it is cut: a next Store
// that cannot answer. Writes into the memorystore itself are another
// instance's.
type failingLookups struct {
	*memorystore.Store
	fail atomic.Bool
}

var errLookupsDown = errors.New("failinglookups: down")

func (f *failingLookups) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if f.fail.Load() {
		return errLookupsDown
	}
	return f.Store.Revoke(ctx, jti, exp)
}

func (f *failingLookups) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if f.fail.Load() {
		return false, errLookupsDown
	}
	return f.Store.IsRevoked(ctx, jti)
}

func (f *failingLookups) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if f.fail.Load() {
		return time.Time{}, errLookupsDown
	}
	return f.Store.RevokedUntil(ctx, jti)
}

func (f *failingLookups) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if f.fail.Load() {
		return errLookupsDown
	}
	return f.Store.RevokedUntilEach(ctx, jtis, until)
}

// A partition in process: the watch is cut while the store goes on
// taking revocations from another instance. The Lost distrusts every
// cached "not revoked" before the next check, each check (single or
// batch) then reads the store, and after the heal no check answers from
// an answer cached before the cut until the watch has replayed the gap.
func TestPartitionInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newMemory(t)
		b := liveOver(t, m)
		mustRevoked(t, b, "x", false, "cached as not revoked, for an hour")
		mustRevoked(t, b, "z", false, "cached as not revoked, for an hour")
		calls := b.Stats().BackendCalls
		mustRevoked(t, b, "x", false, "a hit")
		if b.Stats().BackendCalls != calls {
			t.Fatal("a live watch's negative was not a hit")
		}

		restore := m.CutWatches()
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLost {
			t.Fatalf("watch %s after the cut, want lost", st.Watch)
		}
		exp := time.Now().Add(time.Hour)
		for _, jti := range []string{"x", "z"} { // another instance
			if err := m.Revoke(ctx, jti, exp); err != nil {
				t.Fatal(err)
			}
		}
		mustRevoked(t, b, "x", true, "revoked during the cut: read from the store")
		until := make([]time.Time, 2)
		if err := b.RevokedUntilEach(ctx, []string{"z", "w"}, until); err != nil || !until[0].Equal(exp) || !until[1].IsZero() {
			t.Errorf("RevokedUntilEach(z, w) during the cut = %v, %v; want z's exp and zero", until, err)
		}
		mustRevoked(t, b, "y", false, "never revoked")
		if err := m.Revoke(ctx, "y", exp); err != nil {
			t.Fatal(err)
		}
		mustRevoked(t, b, "y", true, "no negative is cached while lost")
		if err := b.RevokedUntilEach(ctx, []string{"w", "y"}, until); err != nil || !until[0].IsZero() || !until[1].Equal(exp) {
			t.Errorf("RevokedUntilEach(w, y) during the cut = %v, %v; want zero and y's exp", until, err)
		}

		restore()
		mustRevoked(t, b, "y", true, "healed, the replay not yet applied")
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLive || st.WatchSyncs != 1 {
			t.Fatalf("after the heal: %+v, want live, resumed without a sync", st)
		}
		mustRevoked(t, b, "x", true, "replayed")
	})
}

// frozenLookups is a memorystore whose lookups, while frozen is set, wait
// until their context ends: a server that stopped answering and keeps its
// connections open (SIGSTOP), with a client that waits as long as its
// caller lets it.
type frozenLookups struct {
	*memorystore.Store
	frozen atomic.Bool
	thaw   chan struct{} // closed: lookups waiting go on
}

func (f *frozenLookups) wait(ctx context.Context) error {
	if !f.frozen.Load() {
		return nil
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("frozen: %w", ctx.Err())
	case <-f.thaw:
		return nil
	}
}

func (f *frozenLookups) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if err := f.wait(ctx); err != nil {
		return false, err
	}
	return f.Store.IsRevoked(ctx, jti)
}

func (f *frozenLookups) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if err := f.wait(ctx); err != nil {
		return time.Time{}, err
	}
	return f.Store.RevokedUntil(ctx, jti)
}

func (f *frozenLookups) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.Store.RevokedUntilEach(ctx, jtis, until)
}

// TestLostBoundsLookups: with the next Store silent, a check in flight
// when the watch is lost returns at the loss, and every check made while
// lost waits LostLookupTimeout at most, whatever the caller's context:
// without WithStaleIfError it fails closed, with it a cached answer comes
// from memory at once. (TestSilentServerBound adds redisstore's silence
// bound, over a frozen redis-server.)
func TestLostBoundsLookups(t *testing.T) {
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				m := newMemory(t)
				f := &frozenLookups{Store: m, thaw: make(chan struct{})}
				defer close(f.thaw) // the lookups left waiting end with the bubble
				var opts []cached.Option
				if stale {
					opts = append(opts, cached.WithStaleIfError(time.Minute))
				}
				b := liveOver(t, f, opts...)
				mustRevoke(t, b, "revoked", time.Now().Add(time.Hour))
				synctest.Wait()
				mustRevoked(t, b, "seen", false, "cached as not revoked")

				f.frozen.Store(true)
				inFlight := make(chan error, 1)
				go func() { _, err := b.IsRevoked(ctx, "in-flight"); inFlight <- err }()
				synctest.Wait() // its lookup waits on the silent store
				restore := m.CutWatches()
				defer restore()
				lost := time.Now()
				synctest.Wait()
				select {
				case err := <-inFlight:
					if err == nil {
						t.Error("a check in flight at the loss answered from a silent store")
					}
				default:
					t.Error("a check in flight still waits after the watch was lost")
				}

				check := func(jti string, wantErr bool, want bool, wantWait time.Duration) {
					t.Helper()
					start := time.Now()
					ok, err := b.IsRevoked(context.Background(), jti) // no deadline of its own
					if waited := time.Since(start); waited != wantWait {
						t.Errorf("IsRevoked(%s) waited %v, want %v", jti, waited, wantWait)
					}
					if (err != nil) != wantErr || err == nil && ok != want {
						t.Errorf("IsRevoked(%s) = %v, %v", jti, ok, err)
					}
				}
				check("unseen", true, false, cached.LostLookupTimeout)
				check("revoked", false, true, 0)
				if stale {
					check("seen", false, false, 0)
				} else {
					check("seen", true, false, cached.LostLookupTimeout)
				}
				start := time.Now()
				if err := b.RevokedUntilEach(ctx, []string{"unseen", "revoked"}, make([]time.Time, 2)); err == nil {
					t.Error("RevokedUntilEach of an unknown id answered from a silent store")
				}
				if waited := time.Since(start); waited != cached.LostLookupTimeout {
					t.Errorf("RevokedUntilEach waited %v, want %v", waited, cached.LostLookupTimeout)
				}
				st := b.Stats()
				if stale != (st.StaleAnswers > 0) || stale != st.StaleSince.Equal(lost) {
					t.Errorf("Stats %+v with stale-if-error %v", st, stale)
				}
			})
		})
	}
}

// WithStaleIfError in process: while the watch is lost and the store
// fails, answers cached while the watch was live come from memory with no
// backend call, for d; then checks fail closed again.
func TestStaleIfErrorInProcess(t *testing.T) {
	for _, replica := range []bool{false, true} {
		t.Run(fmt.Sprintf("replica=%v", replica), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				m := newMemory(t)
				f := &failingLookups{Store: m}
				const d = time.Minute
				opts := []cached.Option{cached.WithStaleIfError(d)}
				if replica {
					opts = append(opts, cached.WithReplica())
				}
				if err := m.Revoke(ctx, "old", time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				b := liveOver(t, f, opts...)
				mustRevoked(t, b, "seen", false, "cached")
				mustRevoke(t, b, "revoked", time.Now().Add(time.Hour))
				synctest.Wait()

				restore := m.CutWatches()
				synctest.Wait()
				lostAt := time.Now()
				f.fail.Store(true)
				calls := b.Stats().BackendCalls
				mustRevoked(t, b, "seen", false, "stale, from memory")
				mustRevoked(t, b, "revoked", true, "from memory")
				if replica {
					mustRevoked(t, b, "old", true, "from the replica")
					mustRevoked(t, b, "never", false, "from the replica")
				} else if _, err := b.IsRevoked(ctx, "never"); err == nil {
					t.Error("an id with no cached answer answered during the outage")
				}
				st := b.Stats()
				if !st.StaleSince.Equal(lostAt) || st.StaleAnswers == 0 {
					t.Errorf("Stats %+v, want StaleSince %v and stale answers", st, lostAt)
				}
				if !replica && st.BackendCalls != calls+1 || replica && st.BackendCalls != calls {
					t.Errorf("backend calls during the outage: %d", st.BackendCalls-calls)
				}
				until := make([]time.Time, 2)
				if err := b.RevokedUntilEach(ctx, []string{"seen", "revoked"}, until); err != nil || !until[0].IsZero() || until[1].IsZero() {
					t.Errorf("RevokedUntilEach during the outage: %v, %v", until, err)
				}

				time.Sleep(d - 1)
				mustRevoked(t, b, "seen", false, "stale, from memory, until d")
				time.Sleep(1)
				if _, err := b.IsRevoked(ctx, "seen"); err == nil {
					t.Error("after d, a cached answer still came from memory")
				}
				mustRevoked(t, b, "revoked", true, "a known revocation holds until its exp")
				if st := b.Stats(); !st.StaleSince.IsZero() {
					t.Errorf("after d, StaleSince = %v, want zero", st.StaleSince)
				}

				f.fail.Store(false)
				restore()
				synctest.Wait()
				if st := b.Stats(); st.Watch != cached.WatchLive || !st.StaleSince.IsZero() {
					t.Errorf("after the heal: %+v", st)
				}
				mustRevoked(t, b, "seen", false, "fresh")
			})
		})
	}
}

// Without WithStaleIfError, the same outage fails closed: every check of
// an id not known revoked returns the store's error, Revoke fails and
// records nothing, a known revocation holds; after the heal the answers
// are right at once, with nothing left from the outage.
func TestOutageFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newMemory(t)
		f := &failingLookups{Store: m}
		b := liveOver(t, f)
		exp := time.Now().Add(time.Hour)
		mustRevoke(t, b, "revoked", exp)
		mustRevoked(t, b, "seen", false, "cached")
		restore := m.CutWatches()
		synctest.Wait()
		f.fail.Store(true)
		for _, jti := range []string{"seen", "unseen"} {
			if _, err := b.IsRevoked(ctx, jti); !errors.Is(err, errLookupsDown) {
				t.Errorf("IsRevoked(%s) during the outage: %v, want the store's error", jti, err)
			}
		}
		if err := b.Revoke(ctx, "during", exp); !errors.Is(err, errLookupsDown) {
			t.Errorf("Revoke during the outage: %v, want the store's error", err)
		}
		mustRevoked(t, b, "revoked", true, "a known revocation holds until its exp, store or not")
		if st := b.Stats(); st.StaleAnswers != 0 || !st.StaleSince.IsZero() || st.Errors < 3 {
			t.Errorf("Stats %+v: want no stale answers and 3 errors or more", st)
		}

		f.fail.Store(false)
		restore()
		synctest.Wait()
		mustRevoked(t, b, "unseen", false, "the failed lookups cached no error")
		mustRevoked(t, b, "during", false, "the failed Revoke left no local entry")
		for _, jti := range []string{"seen", "unseen"} { // another instance
			if err := m.Revoke(ctx, jti, exp); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			mustRevoked(t, b, jti, true, "revoked after the outage")
		}
		if _, err := cached.New(m, cached.WithStaleIfError(-time.Second)); err == nil {
			t.Error("WithStaleIfError(-1s): no error")
		}
	})
}

// TestCutConcurrentChecks is TestCut in real time with goroutines checking
// every id all along, singly and in batches, so that checks race the loss,
// the revocations, the heal and the replay or resync in whatever order the
// scheduler picks. Once B's watch reported the loss and A's Revoke of an id
// returned, B never answers "not revoked" for it. Errors are allowed.
func TestCutConcurrentChecks(t *testing.T) {
	t.Parallel()
	for _, replica := range []bool{false, true} {
		for _, gap := range []bool{false, true} {
			t.Run(fmt.Sprintf("replica=%v/gap=%v", replica, gap), func(t *testing.T) {
				t.Parallel()
				testCutConcurrentChecks(t, replica, gap)
			})
		}
	}
}

func testCutConcurrentChecks(t *testing.T, replica, gap bool) {
	const logMax = 50
	m := newMemory(t, memorystore.WithLogMaxLen(logMax))
	hour := []cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithWatchNegativeTTL(time.Hour)}
	a := newCached(t, m, hour...)
	bOpts := hour
	if replica {
		bOpts = append(bOpts, cached.WithReplica())
	}
	b := newCached(t, m, bOpts...)
	waitLive(t, b)
	n := logMax / 2
	if gap {
		n = 2 * logMax
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cut-%d", i)
		mustRevoked(t, b, ids[i], false, "cached as not revoked, for an hour")
	}

	var revoked sync.Map // id -> struct{}: its Revoke returned, after the loss
	var bad atomic.Value
	var checks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			until := make([]time.Time, 3)
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := []string{ids[i%n], ids[(i+1)%n], ids[(i+7)%n]}
				was := make([]bool, len(batch))
				for k, jti := range batch {
					_, was[k] = revoked.Load(jti)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if w%2 == 0 {
					if ok, err := b.IsRevoked(ctx, batch[0]); err == nil && !ok && was[0] {
						bad.CompareAndSwap(nil, fmt.Sprintf("IsRevoked(%s) = false, Stats %+v", batch[0], b.Stats()))
					}
				} else if err := b.RevokedUntilEach(ctx, batch, until); err == nil {
					for k := range batch {
						if until[k].IsZero() && was[k] {
							bad.CompareAndSwap(nil, fmt.Sprintf("RevokedUntilEach: %s not revoked, Stats %+v", batch[k], b.Stats()))
						}
					}
				}
				cancel()
				checks.Add(1)
			}
		})
	}

	restore := m.CutWatches()
	waitFor(t, 5*time.Second, "B's watch lost", func() bool { return b.Stats().Watch == cached.WatchLost })
	exp := time.Now().Add(time.Hour)
	for _, jti := range ids {
		mustRevoke(t, a, jti, exp)
		revoked.Store(jti, struct{}{})
	}
	restore()
	waitLive(t, b)
	time.Sleep(20 * time.Millisecond) // checks after the heal
	close(stop)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Errorf("B answered \"not revoked\" after the Revoke returned: %s", v)
	}
	if checks.Load() == 0 {
		t.Error("no check was made")
	}
	for _, jti := range ids {
		mustRevoked(t, b, jti, true, "revoked while B was cut")
	}
	st := b.Stats()
	wantSyncs := uint64(1)
	if gap {
		wantSyncs = 2
	}
	if st.WatchSyncs != wantSyncs {
		t.Errorf("B synced %d times, want %d", st.WatchSyncs, wantSyncs)
	}
}
