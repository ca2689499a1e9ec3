package cached_test

// Attacks on the one lookup path (lookup.go): what a check may take from a
// lookup that another check started.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A check that joins a lookup in flight gets an answer read before it
// began. That answer must be no staler than a cached one would be: a
// "not revoked" read by a lookup that started more than the TTL of "not
// revoked" answers before the check is not shared with it, whatever the
// path (single or batch) and whether the TTL is NegativeTTL (no watch) or
// WatchNegativeTTL (watch live, a revocation written without its
// announcement). Here the lookup is slow (2 s, within the default
// WithLookupTimeout of 5 s), the TTL 1 s, and the id is revoked 0.5 s after
// the lookup read it: a check begun 1.5 s after the revocation must see
// it.
func TestSharedAnswerKeepsStalenessBound(t *testing.T) {
	inBubbles(t, "watch", "batch", testSharedStaleness)
}

func testSharedStaleness(t *testing.T, watch, batch bool) {
	ctx := context.Background()
	data, feed := newMemory(t), newMemory(t)
	h := newHeldStore(data)
	opts := []cached.Option{cached.WithNegativeTTL(time.Second), cached.WithWatchNegativeTTL(time.Second)}
	var c *cached.Store
	if watch {
		c = newCached(t, heldUnannounced{h, feed}, opts...)
	} else {
		c = newCached(t, h, append(opts, cached.WithoutWatch())...)
	}
	synctest.Wait()
	check := func() bool {
		if batch {
			until := make([]time.Time, 2)
			if err := c.RevokedUntilEach(ctx, []string{"x", "x"}, until); err != nil {
				t.Error(err)
			}
			return !until[0].IsZero() && !until[1].IsZero()
		}
		got, err := c.IsRevoked(ctx, "x")
		if err != nil {
			t.Error(err)
		}
		return got
	}
	first, second := make(chan bool, 1), make(chan bool, 1)
	go func() { first <- check() }()
	synctest.Wait() // its lookup read "not revoked" and is held
	time.Sleep(500 * time.Millisecond)
	mustRevoke(t, data, "x", time.Now().Add(time.Hour)) // elsewhere, unannounced
	time.Sleep(1500 * time.Millisecond)
	go func() { second <- check() }()
	synctest.Wait()
	close(h.release)
	<-first // began before the revocation: either answer is right
	if !<-second {
		t.Error("a check begun 1.5 s after the revocation answered \"not revoked\" from a lookup that read the store 2 s before it began; the TTL of \"not revoked\" is 1 s")
	}
}

// heldUnannounced is a heldStore whose watch reads another memorystore, so
// that revocations written into the held one are not announced.
type heldUnannounced struct {
	*heldStore
	feed *memorystore.Store
}

func (u heldUnannounced) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return u.feed.Watch(ctx, fn)
}

// panicStore is a memorystore whose lookups of "boom" panic, after
// waiting until release is closed (so that checks can join them).
type panicStore struct {
	*memorystore.Store
	release chan struct{}
}

func (p *panicStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if jti == "boom" {
		<-p.release
		panic("panicstore: boom")
	}
	return p.Store.RevokedUntil(ctx, jti)
}

func (p *panicStore) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	for _, jti := range jtis {
		if jti == "boom" {
			<-p.release
			panic("panicstore: boom")
		}
	}
	return p.Store.RevokedUntilEach(ctx, jtis, until)
}

// A next Store that panics in a lookup panics in every check waiting for
// that lookup, as a direct call would (net/http then recovers it for the
// request, and fails it), instead of in the lookup's own goroutine, which
// nothing can recover and which ends the process; no check is left
// waiting, the lookup is not shared after it, and nothing is cached.
func TestNextStorePanicReachesEveryWaiter(t *testing.T) {
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &panicStore{Store: newMemory(t), release: make(chan struct{})}
				var opts []cached.Option
				if !watch {
					opts = append(opts, cached.WithoutWatch())
				}
				c := newCached(t, p, opts...)
				synctest.Wait()
				ctx := context.Background()
				checks := []func(){
					func() { _, _ = c.IsRevoked(ctx, "boom") },
					func() { _, _ = c.RevokedUntil(ctx, "boom") },
					func() { _ = c.RevokedUntilEach(ctx, []string{"fine", "boom"}, make([]time.Time, 2)) },
				}
				panics := make(chan any, len(checks))
				for _, check := range checks {
					go func() {
						defer func() { panics <- recover() }()
						check()
					}()
					synctest.Wait()
				}
				close(p.release)
				for range checks {
					if v := <-panics; v == nil {
						t.Error("a check of an id whose lookup panicked returned without panicking")
					} else if msg := fmt.Sprint(v); !strings.Contains(msg, "panicstore: boom") {
						t.Errorf("panic %q does not carry the next Store's", msg)
					}
				}
				// The next check of it asks again (and panics again); another id is fine.
				func() {
					defer func() {
						if recover() == nil {
							t.Error("the check after the panic did not ask the next Store again")
						}
					}()
					_, _ = c.IsRevoked(ctx, "boom")
				}()
				mustRevoked(t, c, "fine", false, "never revoked")
				if st := c.Stats(); st.Errors != 2 {
					t.Errorf("Stats.Errors = %d after two lookups that panicked, want 2", st.Errors)
				}
			})
		})
	}
}

// endingWatch is a memorystore whose Watch returns an error, before the
// subscriber's context ends, once end is closed: an error retrying cannot
// fix (announcements turned off, a permission missing).
type endingWatch struct {
	*memorystore.Store
	end chan struct{}
}

var errWatchEnded = errors.New("endingwatch: cannot watch any more")

func (e endingWatch) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.end:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := e.Store.Watch(ctx, fn)
	select {
	case <-e.end:
		return errWatchEnded
	default:
		return err
	}
}

// A watch that ends before Close, live or lost, leaves no "not revoked"
// answer of its time trusted: the Store goes on as a cache without a watch
// (WatchOff), reads the store for every id it does not know revoked, and
// keeps new "not revoked" answers for NegativeTTL only; the replica stops
// answering and stale-if-error's window closes.
func TestWatchEndingDistrustsWhatItVouchedFor(t *testing.T) {
	inBubbles(t, "replica", "lost", testWatchEnding)
}

func testWatchEnding(t *testing.T, replica, lost bool) {
	ctx := context.Background()
	data, feed := newMemory(t), newMemory(t)
	w := endingWatch{Store: feed, end: make(chan struct{})}
	opts := []cached.Option{cached.WithStaleIfError(time.Hour)}
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	// data holds the revocations, feed announces them (or not).
	b := liveOver(t, splitStore{data, w}, append(opts, cached.WithNegativeTTL(time.Second))...)
	mustRevoked(t, b, "x", false, "never revoked: kept for an hour while live")
	if lost {
		feed.CutWatches()
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLost || st.StaleSince.IsZero() {
			t.Fatalf("after the cut: %+v, want lost and stale-if-error's window open", st)
		}
	}
	exp := time.Now().Add(time.Hour)
	if err := data.Revoke(ctx, "x", exp); err != nil { // never announced
		t.Fatal(err)
	}
	errs := b.Stats().Errors
	close(w.end)
	synctest.Wait()
	st := b.Stats()
	if st.Watch != cached.WatchOff || st.ReplicaReady || !st.StaleSince.IsZero() || st.Errors != errs+1 {
		t.Fatalf("after the watch ended: %+v, want off, no replica answering, no stale window, one more error", st)
	}
	mustRevoked(t, b, "x", true, "a \"not revoked\" cached while the watch vouched for it is not trusted once it ended")
	mustRevoked(t, b, "y", false, "never revoked")
	if err := data.Revoke(ctx, "y", exp); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second - 1)
	mustRevoked(t, b, "y", false, "without a watch: kept for NegativeTTL")
	time.Sleep(1)
	mustRevoked(t, b, "y", true, "NegativeTTL has passed")
}

// splitStore reads and writes revocations in data and watches through
// watch: what is written into data alone is never announced.
type splitStore struct {
	*memorystore.Store
	watch endingWatch
}

func (h splitStore) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return h.watch.Watch(ctx, fn)
}

func (h splitStore) ScanRevoked(ctx context.Context, fn func(string, time.Time) error) error {
	return h.Store.ScanRevoked(ctx, fn)
}

// resumedFirst is a memorystore whose Watch breaks the contract's first
// event: it reports Lost and Resumed before anything else, as a WatchStore
// with a bug might, then watches as usual.
// It then waits for gate before it watches.
type resumedFirst struct {
	*memorystore.Store
	gate chan struct{}
}

func (r resumedFirst) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	fn(blocklist.Event{Kind: blocklist.Lost})
	fn(blocklist.Event{Kind: blocklist.Resumed})
	select {
	case <-r.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.Store.Watch(ctx, fn)
}

// A watch that never synced has nothing to resume from: a Resumed before
// the first Synced is taken as a Synced, so the replica is loaded before it
// answers (it answered "not revoked" for every revocation made before the
// start).
func TestReplicaNotServingBeforeLoaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		mustRevoke(t, m, "before", time.Now().Add(time.Hour))
		r := resumedFirst{Store: m, gate: make(chan struct{})}
		b := newCached(t, r, cached.WithReplica())
		synctest.Wait()
		mustRevoked(t, b, "before", true, "revoked before the start")
		if st := b.Stats(); st.ReplicaLoads == 0 && st.ReplicaReady {
			t.Errorf("Stats %+v: the replica answers without a load", st)
		}
		close(r.gate)
		synctest.Wait()
		mustRevoked(t, b, "before", true, "revoked before the start")
		if st := b.Stats(); !st.ReplicaReady || st.Watch != cached.WatchLive {
			t.Errorf("Stats %+v, want the replica answering", st)
		}
	})
}

// Every check of an id is a hit or a miss, stale-if-error's answers too:
// one given from memory while the watch is lost, without a lookup, is a
// hit; one given after a lookup failed is a miss.
func TestStaleAnswersAreHitsOrMisses(t *testing.T) {
	for _, replica := range []bool{false, true} {
		t.Run(fmt.Sprintf("replica=%v", replica), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemory(t)
				opts := []cached.Option{cached.WithStaleIfError(time.Hour)}
				if replica {
					opts = append(opts, cached.WithReplica())
				}
				b := liveOver(t, m, opts...)
				mustRevoked(t, b, "seen", false, "never revoked")
				mustRevoke(t, b, "revoked", time.Now().Add(time.Hour))
				m.CutWatches()
				synctest.Wait()
				before := b.Stats()
				mustRevoked(t, b, "seen", false, "stale, from memory")
				until := make([]time.Time, 2)
				if err := b.RevokedUntilEach(context.Background(), []string{"seen", "revoked"}, until); err != nil {
					t.Fatal(err)
				}
				st := b.Stats()
				if checks := (st.Hits - before.Hits) + (st.Misses - before.Misses); checks != 3 || st.StaleAnswers == before.StaleAnswers {
					t.Errorf("3 checks of an id while stale-if-error answers: %d hits and misses, %d stale answers",
						checks, st.StaleAnswers-before.StaleAnswers)
				}
			})
		})
	}
}

// rttStore is a memorystore whose watch takes rtt to deliver each event
// (the read that brings it, over a network) and whose ScanRevoked takes
// scan after reading the store (a long load: revocations made meanwhile
// are not in it).
type rttStore struct {
	*memorystore.Store
	rtt, scan time.Duration
}

func (r rttStore) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return r.Store.Watch(ctx, func(ev blocklist.Event) {
		time.Sleep(r.rtt)
		fn(ev)
	})
}

func (r rttStore) ScanRevoked(ctx context.Context, fn func(string, time.Time) error) error {
	type rev struct {
		jti   string
		until time.Time
	}
	var all []rev
	if err := r.Store.ScanRevoked(ctx, func(jti string, until time.Time) error {
		all = append(all, rev{jti, until})
		return nil
	}); err != nil {
		return err
	}
	time.Sleep(r.scan)
	for _, v := range all {
		if err := fn(v.jti, v.until); err != nil {
			return err
		}
	}
	return nil
}

// A revocation announced while the replica loads is in the replica when it
// starts answering: the load does not hold the watch's events back, so the
// replica never answers from a load without the announcements made during
// it (it did, until the watch's next read after the load delivered them).
func TestReplicaLoadKeepsUpWithTheWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const logMax = 5
		m := newMemory(t, memorystore.WithLogMaxLen(logMax))
		r := rttStore{Store: m, rtt: 10 * time.Millisecond, scan: time.Second}
		b := newCached(t, r, cached.WithReplica())
		waitReady := func() time.Duration {
			start := time.Now()
			for !b.Stats().ReplicaReady {
				time.Sleep(time.Millisecond)
			}
			return time.Since(start)
		}
		waitReady()
		restore := m.CutWatches()
		exp := time.Now().Add(time.Hour)
		for i := range logMax + 1 { // a gap: the replica loads again
			mustRevoke(t, m, fmt.Sprintf("gap-%d", i), exp)
		}
		restore()
		for b.Stats().ReplicaReady {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the load has read the store
		mustRevoke(t, m, "during", exp)    // announced
		if d := waitReady(); d < 500*time.Millisecond {
			t.Fatalf("the replica was ready %v after the revocation: the load did not take its second", d)
		}
		mustRevoked(t, b, "during", true, "announced while the replica loaded, before it answered")
		if st := b.Stats(); st.ReplicaLoads != 2 || st.Watch != cached.WatchLive {
			t.Errorf("Stats %+v, want live after 2 loads", st)
		}
	})
}

// The end RevokedUntil reports can move later: a later Revoke of the id
// extends it (jwtguard's LogoutAll does, and reads its cutoff from the
// end: an end reported late lets through tokens issued between the two
// cutoffs). A cached end is trusted as a cached "not revoked" is: for
// NegativeTTL without a watch; while the watch is live for
// WatchNegativeTTL when the extension is not announced, and not across a
// loss or a gap. It was trusted until the revocation ended (up to 400 days
// for a LogoutAll), whatever happened meanwhile.
func TestCachedEndFollowsTheStalenessRule(t *testing.T) {
	for _, mode := range []string{"off", "live-unannounced", "gap", "replica-gap"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testCachedEnd(t, mode) })
		})
	}
}

func testCachedEnd(t *testing.T, mode string) {
	ctx := context.Background()
	const logMax = 5
	data, feed := newMemory(t, memorystore.WithLogMaxLen(logMax)), newMemory(t)
	const ttl = time.Second
	opts := []cached.Option{cached.WithNegativeTTL(ttl), cached.WithWatchNegativeTTL(ttl)}
	var b *cached.Store
	switch mode {
	case "off":
		b = newCached(t, data, append(opts, cached.WithoutWatch())...)
	case "live-unannounced":
		b = newCached(t, unannounced{data, feed}, opts...)
	case "gap":
		b = newCached(t, data, opts...)
	case "replica-gap":
		b = newCached(t, data, append(opts, cached.WithReplica())...)
	}
	synctest.Wait()
	first, second := time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	mustRevoke(t, data, "sub", first)
	synctest.Wait()
	for range 2 { // the second from memory
		if until, err := b.RevokedUntil(ctx, "sub"); err != nil || !until.Equal(first) {
			t.Fatalf("RevokedUntil = %v, %v; want %v", until, err, first)
		}
	}
	want := func(why string) {
		t.Helper()
		until := make([]time.Time, 1)
		if err := b.RevokedUntilEach(ctx, []string{"sub"}, until); err != nil || !until[0].Equal(second) {
			t.Errorf("%s: RevokedUntilEach = %v, %v; want the extended end %v", why, until[0], err, second)
		}
	}
	switch mode {
	case "off", "live-unannounced":
		mustRevoke(t, data, "sub", second) // announced to nobody
		time.Sleep(ttl)
		want("the TTL of cached answers has passed")
	default:
		restore := data.CutWatches()
		mustRevoke(t, data, "sub", second)
		for i := range logMax + 1 {
			mustRevoke(t, data, fmt.Sprintf("gap-%d", i), first)
		}
		restore()
		synctest.Wait()
		if st := b.Stats(); st.WatchSyncs != 2 || st.Watch != cached.WatchLive {
			t.Fatalf("Stats %+v, want live after a gap", st)
		}
		want("after a gap")
	}
}

// A check of the end that joins a lookup in flight gets an end no staler
// than a cached one may be: RevokedUntil of an id whose revocation was
// extended (unannounced) 1.5 s before the check began, while a lookup
// started 2 s before it was held, reports the extended end when the TTL of
// cached answers is 1 s.
func TestSharedEndKeepsStalenessBound(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				data := newMemory(t)
				h := newHeldStore(data)
				c := newCached(t, h, cached.WithNegativeTTL(time.Second), cached.WithoutWatch())
				first, second := time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
				mustRevoke(t, data, "sub", first)
				check := func() time.Time {
					if batch {
						until := make([]time.Time, 2)
						if err := c.RevokedUntilEach(ctx, []string{"sub", "other"}, until); err != nil {
							t.Error(err)
						}
						return until[0]
					}
					until, err := c.RevokedUntil(ctx, "sub")
					if err != nil {
						t.Error(err)
					}
					return until
				}
				leader, follower := make(chan time.Time, 1), make(chan time.Time, 1)
				go func() { leader <- check() }()
				synctest.Wait() // it read the first end and is held
				time.Sleep(500 * time.Millisecond)
				mustRevoke(t, data, "sub", second)
				time.Sleep(1500 * time.Millisecond)
				go func() { follower <- check() }()
				synctest.Wait()
				close(h.release)
				<-leader // began before the extension: either end is right
				if got := <-follower; !got.Equal(second) {
					t.Errorf("a check begun 1.5 s after the extension reported the end %v from a lookup begun 2 s before it; want %v", got, second)
				}
			})
		})
	}
}
