package cached_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// pausedLookups is a memorystore whose lookups (RevokedUntil,
// RevokedUntilEach) read the store, then call pause, then answer what they
// read, or fail with pause's error: lookups in flight hold answers that
// what happens meanwhile can overtake.
type pausedLookups struct {
	*memorystore.Store
	pause func(context.Context) error
}

func (p *pausedLookups) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	until, err := p.Store.RevokedUntil(ctx, jti)
	if err := p.pause(ctx); err != nil {
		return time.Time{}, err
	}
	return until, err
}

func (p *pausedLookups) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	err := p.Store.RevokedUntilEach(ctx, jtis, until)
	if err := p.pause(ctx); err != nil {
		return err
	}
	return err
}

// heldStore is a pausedLookups whose lookups wait until release is closed,
// then answer what they read, or fail with fail when set: a test holds
// lookups in flight, with their answers read, and counts them.
type heldStore struct {
	pausedLookups
	release chan struct{}
	fail    error
	calls   atomic.Int64
}

func newHeldStore(m *memorystore.Store) *heldStore {
	h := &heldStore{release: make(chan struct{})}
	h.pausedLookups = pausedLookups{Store: m, pause: h.hold}
	return h
}

var errHeld = errors.New("heldstore: down")

func (h *heldStore) hold(ctx context.Context) error {
	h.calls.Add(1)
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.fail
}

// One lookup path: single checks (IsRevoked, RevokedUntil) and batches
// (RevokedUntilEach, the path sessions use) share the lookup of an id in
// flight, whichever started it, with and without a watch, and keep the
// counters' invariants: every check of an id is a hit or a miss, a shared
// lookup is one backend call, a failed one one error, and an error is
// never cached.
func TestSingleAndBatchShareLookups(t *testing.T) {
	for _, mode := range []string{"without-watch", "watch-live"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testShareLookups(t, mode == "watch-live") })
		})
	}
}

func testShareLookups(t *testing.T, watch bool) {
	ctx := context.Background()
	m := memorystore.New()
	defer m.Close()
	h := newHeldStore(m)
	// Revoked before the cache starts: not announced to its watch.
	if err := m.Revoke(ctx, "x", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var opts []cached.Option
	if !watch {
		opts = append(opts, cached.WithoutWatch())
	}
	c, err := cached.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	synctest.Wait()
	if want := map[bool]cached.WatchState{false: cached.WatchOff, true: cached.WatchLive}[watch]; c.Stats().Watch != want {
		t.Fatalf("watch %v, want %v", c.Stats().Watch, want)
	}

	// run starts checks one after the other, each joining the lookups in
	// flight before the next starts, then lets the lookups answer.
	run := func(checks ...func() error) []error {
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, check := range checks {
			wg.Go(func() { errs[i] = check() })
			synctest.Wait() // it has missed and waits for a lookup
		}
		close(h.release)
		wg.Wait()
		h.release = make(chan struct{})
		return errs
	}
	single := func(id string, want bool) func() error {
		return func() error {
			got, err := c.IsRevoked(ctx, id)
			if err == nil && got != want {
				err = errors.New("IsRevoked(" + id + ") answered wrong")
			}
			return err
		}
	}
	until := func(id string, want bool) func() error {
		return func() error {
			got, err := c.RevokedUntil(ctx, id)
			if err == nil && got.IsZero() == want {
				err = errors.New("RevokedUntil(" + id + ") answered wrong")
			}
			return err
		}
	}
	batch := func(ids []string, want []bool) func() error {
		return func() error {
			got := make([]time.Time, len(ids))
			if err := c.RevokedUntilEach(ctx, ids, got); err != nil {
				return err
			}
			for i := range ids {
				if got[i].IsZero() == want[i] {
					return errors.New("RevokedUntilEach answered wrong for " + ids[i])
				}
			}
			return nil
		}
	}
	step := func(name string, wantCalls, wantMisses, wantErrors uint64, errs []error, wantErr error) {
		t.Helper()
		for i, err := range errs {
			if !errors.Is(err, wantErr) {
				t.Errorf("%s: check %d: error %v, want %v", name, i, err, wantErr)
			}
		}
		st := c.Stats()
		if st.BackendCalls != wantCalls || uint64(h.calls.Load()) != wantCalls || st.Misses != wantMisses || st.Errors != wantErrors {
			t.Errorf("%s: %d backend calls (%d seen by the store), %d misses, %d errors; want %d, %d, %d",
				name, st.BackendCalls, h.calls.Load(), st.Misses, st.Errors, wantCalls, wantMisses, wantErrors)
		}
	}

	// A single check leads; a batch and a RevokedUntil of the same id join
	// it, and the batch reads only its other id.
	errs := run(single("x", true), batch([]string{"x", "y"}, []bool{true, false}), until("x", true))
	step("single first", 2, 4, 0, errs, nil)

	// A batch leads; single checks of both its ids join it.
	errs = run(batch([]string{"u", "x2"}, []bool{false, false}), single("u", false), until("x2", false))
	step("batch first", 3, 8, 0, errs, nil)

	// Answers are cached: the same checks again are hits.
	hits := c.Stats().Hits
	errs = []error{single("x", true)(), single("y", false)(), batch([]string{"x", "y", "u"}, []bool{true, false, false})()}
	step("warm", 3, 8, 0, errs, nil)
	if got := c.Stats().Hits - hits; got != 5 {
		t.Errorf("warm: %d hits, want 5", got)
	}

	// A failed lookup fails every check sharing it, counts one error, and
	// leaves nothing cached.
	h.fail = errHeld
	errs = run(batch([]string{"e1", "e2"}, nil), single("e1", false), single("e2", false))
	step("shared failure", 4, 12, 1, errs, errHeld)
	h.fail = nil
	errs = run(batch([]string{"e1", "e2"}, []bool{false, false}))
	step("after the failure", 5, 14, 1, errs, nil)
}

// skewedStore judges exp by a clock an hour behind this process's: it
// stores a revocation whose exp this process sees as past, for an hour.
type skewedStore struct{ *memorystore.Store }

func (s skewedStore) Revoke(ctx context.Context, jti string, exp time.Time) error {
	return s.Store.Revoke(ctx, jti, exp.Add(time.Hour))
}

func (s skewedStore) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	return s.Store.RevokeOnce(ctx, jti, exp.Add(time.Hour))
}

// A revocation the next Store accepted with an exp already past here (its
// clock is behind) leaves no cached "not revoked" answer behind.
func TestRevokePastExpDropsNotRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memorystore.New()
		defer m.Close()
		c, err := cached.New(skewedStore{m}, cached.WithoutWatch(), cached.WithNegativeTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		past := time.Now().Add(-time.Minute)
		for _, revoke := range []func(id string) error{
			func(id string) error { return c.Revoke(ctx, id, past) },
			func(id string) error {
				if first, err := c.RevokeOnce(ctx, id, past); !first || err != nil {
					t.Errorf("RevokeOnce(%s) = %v, %v; want true, nil", id, first, err)
				}
				return nil
			},
		} {
			id := "skewed-" + time.Now().String()
			mustRevoked(t, c, id, false, "caches not revoked")
			if err := revoke(id); err != nil {
				t.Fatal(err)
			}
			mustRevoked(t, c, id, true, "the next Store holds it")
			time.Sleep(time.Second)
		}
	})
}

// Property: once a revocation is known here (Revoke through the cache
// returned, or the watch applied one made elsewhere), no check that starts
// later answers "not revoked", whichever path it takes (single or batch,
// joining lookups in flight or not), while other checks keep lookups of the
// same ids in flight. Real goroutines, for the race detector.
func TestNoNotRevokedAfterRevocationKnown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemory(t)
	c := newCached(t, m, cached.WithWatchNegativeTTL(time.Hour))
	waitFor(t, 10*time.Second, "the watch live", func() bool { return c.Stats().Watch == cached.WatchLive })
	const ids = 64
	id := func(i int) string { return "prop-" + string(rune('A'+i/26)) + string(rune('a'+i%26)) }
	var known [ids]atomic.Bool // revocation known here: later checks must say revoked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			for n := w; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i, j := n*7%ids, n*13%ids
				ki, kj := known[i].Load(), known[j].Load()
				var ri, rj bool
				switch n % 3 {
				case 0:
					r, err := c.IsRevoked(ctx, id(i))
					ri, rj, kj = r, true, false
					if err != nil {
						t.Error(err)
					}
				case 1:
					u, err := c.RevokedUntil(ctx, id(i))
					ri, rj, kj = !u.IsZero(), true, false
					if err != nil {
						t.Error(err)
					}
				default:
					until := make([]time.Time, 2)
					if err := c.RevokedUntilEach(ctx, []string{id(i), id(j)}, until); err != nil {
						t.Error(err)
					}
					ri, rj = !until[0].IsZero(), !until[1].IsZero()
				}
				if ki && !ri || kj && !rj {
					if bad.Add(1) <= 3 {
						t.Logf("path %d: %s known %v answered %v, %s known %v answered %v", n%3, id(i), ki, ri, id(j), kj, rj)
					}
				}
			}
		})
	}
	exp := time.Now().Add(time.Hour)
	for i := range ids {
		time.Sleep(time.Millisecond)
		if i%2 == 0 {
			mustRevoke(t, c, id(i), exp)
		} else { // elsewhere: known once the watch applied it
			mustRevoke(t, m, id(i), exp)
			// Every revocation so far is announced, this one last.
			waitFor(t, 10*time.Second, "the watch event", func() bool { return c.Stats().WatchEvents >= uint64(i+1) })
		}
		known[i].Store(true)
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d checks answered \"not revoked\" for a revocation known before they began", n)
	}
}

// A check that starts after the watch applied a revocation does not share
// a lookup of the id begun before it: RevokedUntil, which needs the end the
// announcement does not give, reads the next Store again.
func TestWatchedRevocationEndsSharing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := memorystore.New()
		defer m.Close()
		h := newHeldStore(m)
		c, err := cached.New(h)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		synctest.Wait()
		before, after := make(chan time.Time, 1), make(chan time.Time, 1)
		check := func(out chan<- time.Time) {
			until, err := c.RevokedUntil(ctx, "w")
			if err != nil {
				t.Error(err)
			}
			out <- until
		}
		go check(before)
		synctest.Wait() // its lookup read "not revoked" and is held
		if err := m.Revoke(ctx, "w", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the watch applied it
		go check(after)
		synctest.Wait()
		close(h.release)
		<-before // began before the revocation: either answer is right
		if until := <-after; until.IsZero() {
			t.Error("a check begun after the watch applied the revocation answered \"not revoked\"")
		}
		if n := c.Stats().BackendCalls; n != 2 {
			t.Errorf("%d backend calls, want 2", n)
		}
	})
}
