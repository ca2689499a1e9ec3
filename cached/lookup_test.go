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

// heldStore is a memorystore whose lookups (RevokedUntil, RevokedUntilEach)
// wait until release is closed, then answer, or fail with fail when set:
// a test holds lookups in flight and counts them.
type heldStore struct {
	*memorystore.Store
	release chan struct{}
	fail    error
	calls   atomic.Int64
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

func (h *heldStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if err := h.hold(ctx); err != nil {
		return time.Time{}, err
	}
	return h.Store.RevokedUntil(ctx, jti)
}

func (h *heldStore) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := h.hold(ctx); err != nil {
		return err
	}
	return h.Store.RevokedUntilEach(ctx, jtis, until)
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
	h := &heldStore{Store: m, release: make(chan struct{})}
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
