package cached_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func newMemory(t testing.TB, opts ...memorystore.Option) *memorystore.Store {
	t.Helper()
	m := memorystore.New(opts...)
	t.Cleanup(func() { m.Close() })
	return m
}

func newCached(t testing.TB, next blocklist.Store, opts ...cached.Option) *cached.Store {
	t.Helper()
	c, err := cached.New(next, opts...)
	if err != nil {
		t.Fatalf("cached.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inBubbles runs test in a synctest bubble once for each pair of values of
// two flags, as subtests named "<a>=<value>/<b>=<value>".
func inBubbles(t *testing.T, a, b string, test func(t *testing.T, a, b bool)) {
	for _, x := range []bool{false, true} {
		for _, y := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s=%v/%s=%v", a, x, b, y), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { test(t, x, y) })
			})
		}
	}
}

// plainStore hides RevokedUntil, so the Store under it is only a
// blocklist.Store: the shape of a third-party backend.
type plainStore struct{ blocklist.Store }

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return newCached(t, newMemory(t))
	})
}

// The suite again with a cache of one entry, so that almost every check
// follows an eviction.
func TestConformanceSizeOne(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return newCached(t, newMemory(t), cached.WithSize(1))
	})
}

// Over a Store that cannot tell when a revocation ends, revoked answers are
// kept for PositiveTTL only. RevokedUntil then answers a lower bound, not
// the exp the suite checks, so the suite sees only the Store methods.
func TestConformancePlainNext(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return plainStore{newCached(t, plainStore{newMemory(t)})}
	})
}

// Stacked: a cache in front of a cache finds the inner one's RevokedUntil.
func TestConformanceStacked(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return newCached(t, newCached(t, newMemory(t), cached.WithNegativeTTL(100*time.Millisecond)),
			cached.WithNegativeTTL(100*time.Millisecond))
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	m := newMemory(t)
	for name, opt := range map[string]cached.Option{
		"WithSize(0)":               cached.WithSize(0),
		"WithSize(-1)":              cached.WithSize(-1),
		"WithNegativeTTL(-1ns)":     cached.WithNegativeTTL(-1),
		"WithPositiveTTL(-1s)":      cached.WithPositiveTTL(-time.Second),
		"WithLookupTimeout(0)":      cached.WithLookupTimeout(0),
		"WithLookupTimeout(-1s)":    cached.WithLookupTimeout(-time.Second),
		"WithNegativeTTL(-1h) last": cached.WithNegativeTTL(-time.Hour),
	} {
		c, err := cached.New(m, cached.WithSize(10), opt)
		if err == nil || c != nil {
			t.Errorf("New with %s = %v, %v; want nil and an error", name, c, err)
		}
	}
	if _, err := cached.New(m, cached.WithNegativeTTL(0), cached.WithPositiveTTL(0)); err != nil {
		t.Errorf("zero TTLs turn caching off and are valid: %v", err)
	}
}

func mustRevoked(t *testing.T, s blocklist.Store, jti string, want bool, why string) {
	t.Helper()
	got, err := s.IsRevoked(context.Background(), jti)
	if err != nil {
		t.Fatalf("IsRevoked(%q): %v (%s)", jti, err, why)
	}
	if got != want {
		t.Fatalf("IsRevoked(%q) = %v, want %v: %s", jti, got, want, why)
	}
}

func mustRevoke(t *testing.T, s blocklist.Store, jti string, exp time.Time) {
	t.Helper()
	if err := s.Revoke(context.Background(), jti, exp); err != nil {
		t.Fatalf("Revoke(%q): %v", jti, err)
	}
}

// A "not revoked" answer is reused for NegativeTTL and no longer; a revoked
// answer is reused until the revocation ends, and not after.
func TestTTLs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		c := newCached(t, m, cached.WithNegativeTTL(10*time.Second), cached.WithoutWatch())

		mustRevoked(t, c, "a", false, "never revoked")
		mustRevoke(t, m, "a", time.Now().Add(time.Hour)) // straight into the backend
		time.Sleep(10*time.Second - 1)
		mustRevoked(t, c, "a", false, "the negative answer is reused within NegativeTTL")
		time.Sleep(1)
		mustRevoked(t, c, "a", true, "NegativeTTL has passed: asked again")

		calls := c.Stats().BackendCalls
		time.Sleep(time.Hour - 10*time.Second - 1)
		mustRevoked(t, c, "a", true, "a nanosecond before exp")
		if got := c.Stats().BackendCalls; got != calls {
			t.Errorf("BackendCalls = %d, want %d: a revoked answer is reused until exp", got, calls)
		}
		time.Sleep(1)
		mustRevoked(t, c, "a", false, "exp has passed")
	})
}

func TestNegativeTTLZero(t *testing.T) {
	m := newMemory(t)
	c := newCached(t, m, cached.WithNegativeTTL(0), cached.WithoutWatch())
	for range 3 {
		mustRevoked(t, c, "a", false, "never revoked")
	}
	mustRevoke(t, m, "a", time.Now().Add(time.Hour))
	mustRevoked(t, c, "a", true, "no negative answer is kept")
	if st := c.Stats(); st.BackendCalls != 4 || st.Hits != 0 {
		t.Errorf("Stats = %+v, want 4 backend calls and no hit", st)
	}
	mustRevoked(t, c, "a", true, "revoked answers are still kept")
	if st := c.Stats(); st.Hits != 1 {
		t.Errorf("Stats = %+v, want 1 hit", st)
	}
}

// Without an ExpiryStore behind it, a revoked answer is reused for
// PositiveTTL only.
func TestPositiveTTLWithPlainNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		c := newCached(t, plainStore{m}, cached.WithPositiveTTL(time.Second))

		exp := time.Now().Add(1500 * time.Millisecond)
		mustRevoke(t, m, "a", exp)
		mustRevoked(t, c, "a", true, "revoked in the backend")
		time.Sleep(999 * time.Millisecond)
		mustRevoked(t, c, "a", true, "within PositiveTTL")
		if got := c.Stats().BackendCalls; got != 1 {
			t.Errorf("BackendCalls = %d, want 1: the revoked answer is reused for PositiveTTL", got)
		}
		until, err := c.RevokedUntil(context.Background(), "a")
		if err != nil || until.After(exp) || !until.After(time.Now()) {
			t.Errorf("RevokedUntil = %v, %v; want a time after now and not after exp %v", until, err, exp)
		}
		time.Sleep(time.Millisecond)
		mustRevoked(t, c, "a", true, "PositiveTTL passed; the backend still says revoked")
		if got := c.Stats().BackendCalls; got != 2 {
			t.Errorf("BackendCalls = %d, want 2: PositiveTTL has passed", got)
		}
		time.Sleep(999 * time.Millisecond)
		mustRevoked(t, c, "a", true, "exp has passed, but less than PositiveTTL after the lookup")
		time.Sleep(time.Millisecond)
		mustRevoked(t, c, "a", false, "PositiveTTL after the lookup, exp has passed")

		// Revocations written through the cache know their exp.
		mustRevoke(t, c, "b", time.Now().Add(time.Hour))
		time.Sleep(59 * time.Minute)
		mustRevoked(t, c, "b", true, "revoked through the cache until its exp")
	})
}

// gatedStore wraps a real store. Its first lookup of gateID reads the
// store, then waits until the gate is closed, so a test can hold a lookup
// in flight with its answer already read.
type gatedStore struct {
	blocklist.ExpiryStore
	gateID string
	gate   chan struct{}
	gated  atomic.Bool
	calls  atomic.Int64
}

func newGated(t *testing.T, gateID string) *gatedStore {
	return &gatedStore{ExpiryStore: newMemory(t), gateID: gateID, gate: make(chan struct{})}
}

func (g *gatedStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	g.calls.Add(1)
	until, err := g.ExpiryStore.RevokedUntil(ctx, jti)
	if jti == g.gateID && !g.gated.Swap(true) {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("gated: %w", ctx.Err())
		}
	}
	return until, err
}

// settleMisses waits, inside a synctest bubble, until every other
// goroutine is blocked (the checks started have missed and joined or made
// the lookup, which waits at the gate), and checks that n have missed.
func settleMisses(t *testing.T, c *cached.Store, n uint64) {
	t.Helper()
	synctest.Wait()
	if got := c.Stats().Misses; got != n {
		t.Fatalf("%d checks missed, want %d", got, n)
	}
}

func TestSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		g := newGated(t, "hot")
		mustRevoke(t, g, "hot", time.Now().Add(time.Hour))
		c := newCached(t, g)

		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				ok, err := c.IsRevoked(context.Background(), "hot")
				if err == nil && !ok {
					err = errors.New("IsRevoked = false, want true")
				}
				errs <- err
			})
		}
		settleMisses(t, c, n)
		close(g.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := g.calls.Load(); got != 1 {
			t.Errorf("%d concurrent misses made %d backend calls, want 1", n, got)
		}
		if st := c.Stats(); st.BackendCalls != 1 || st.Misses != n {
			t.Errorf("Stats = %+v, want 1 backend call and %d misses", st, n)
		}
	})
}

// A caller whose context ends stops waiting at once, and does not fail the
// lookup it started for the others sharing it.
func TestCanceledCallerDoesNotPoisonSharedLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, "x")
		mustRevoke(t, g, "x", time.Now().Add(time.Hour))
		c := newCached(t, g)

		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := c.IsRevoked(ctx, "x")
			first <- err
		}()
		settleMisses(t, c, 1)
		second := make(chan error, 1)
		go func() {
			ok, err := c.IsRevoked(context.Background(), "x")
			if err == nil && !ok {
				err = errors.New("IsRevoked = false, want true")
			}
			second <- err
		}()
		settleMisses(t, c, 2)

		cancel()
		synctest.Wait()
		select {
		case err := <-first:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("canceled caller got %v, want an error wrapping context.Canceled", err)
			}
		default:
			t.Fatal("canceled caller still waiting for the shared lookup")
		}
		select {
		case err := <-second:
			t.Fatalf("the caller sharing the lookup returned (%v) before the lookup ended", err)
		default:
		}
		close(g.gate)
		if err := <-second; err != nil {
			t.Errorf("the caller sharing the lookup got %v, want true and no error", err)
		}
		if got := g.calls.Load(); got != 1 {
			t.Errorf("backend calls = %d, want 1", got)
		}
	})
}

// A lookup that read "not revoked" before a Revoke through the cache
// finished must not hide that revocation, even when the revoked entry has
// been evicted meanwhile.
func TestRevokeOvertakesLookupInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, "x")
		c := newCached(t, g, cached.WithSize(1))

		stale := make(chan bool, 1)
		go func() {
			ok, err := c.IsRevoked(context.Background(), "x")
			if err != nil {
				t.Error(err)
			}
			stale <- ok
		}()
		settleMisses(t, c, 1) // the lookup has read "not revoked" and is held

		mustRevoke(t, c, "x", time.Now().Add(time.Hour))
		mustRevoked(t, c, "x", true, "read-your-writes while a stale lookup is in flight")
		mustRevoked(t, c, "y", false, "evicts x from the one-entry cache")
		mustRevoked(t, c, "x", true, "after eviction, a new lookup, not the stale one in flight")

		close(g.gate)
		<-stale // either answer is right for a check that overlapped the Revoke
		mustRevoked(t, c, "x", true, "the stale lookup must not have cached \"not revoked\"")
	})
}

// The local entry is monotonic like every Store: the later exp wins.
func TestRevokeKeepsLaterExp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		c := newCached(t, m, cached.WithoutWatch())
		long, short := time.Now().Add(time.Hour), time.Now().Add(time.Minute)
		mustRevoke(t, c, "a", long)
		mustRevoke(t, c, "a", short)
		until, err := c.RevokedUntil(context.Background(), "a")
		if err != nil || !until.Equal(long) {
			t.Errorf("RevokedUntil = %v, %v; want %v", until, err, long)
		}
		time.Sleep(2 * time.Minute)
		mustRevoked(t, c, "a", true, "a shorter exp must not shorten the revocation")
	})
}

// failingStore wraps a real store and fails while down is set: a backend
// that cannot answer, in-process. (redis_test.go does the same with a
// killed redis-server.)
type failingStore struct {
	blocklist.ExpiryStore
	down atomic.Bool
}

var errDown = errors.New("failingstore: backend down")

func (f *failingStore) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.ExpiryStore.Revoke(ctx, jti, exp)
}

func (f *failingStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if f.down.Load() {
		return time.Time{}, errDown
	}
	return f.ExpiryStore.RevokedUntil(ctx, jti)
}

func TestErrorsAreNotCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		f := &failingStore{ExpiryStore: m}
		c := newCached(t, f, cached.WithoutWatch())
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)

		f.down.Store(true)
		if ok, err := c.IsRevoked(ctx, "a"); !errors.Is(err, errDown) {
			t.Fatalf("IsRevoked with the backend down = %v, %v; want its error", ok, err)
		}
		if _, err := c.RevokedUntil(ctx, "a"); !errors.Is(err, errDown) {
			t.Fatalf("RevokedUntil with the backend down: %v; want its error", err)
		}
		if err := c.Revoke(ctx, "b", exp); !errors.Is(err, errDown) {
			t.Fatalf("Revoke with the backend down: %v; want its error", err)
		}
		mustRevoked(t, m, "b", false, "the failed Revoke wrote nothing")

		f.down.Store(false)
		mustRevoke(t, m, "a", exp) // revoked right after the outage
		mustRevoked(t, c, "a", true, "the failed lookup left no \"not revoked\" entry")
		mustRevoked(t, c, "b", false, "the failed Revoke left no local revoked entry")
		if st := c.Stats(); st.Errors != 3 {
			t.Errorf("Stats.Errors = %d, want 3", st.Errors)
		}
	})
}

// lostAckStore wraps a real store whose Revoke stores the revocation and
// then fails, as a write does whose reply was lost, or one that Redis
// Cluster stored but could not announce.
type lostAckStore struct{ blocklist.ExpiryStore }

func (l lostAckStore) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := l.ExpiryStore.Revoke(ctx, jti, exp); err != nil {
		return err
	}
	return errDown
}

func (l lostAckStore) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if _, err := l.ExpiryStore.(blocklist.OnceStore).RevokeOnce(ctx, jti, exp); err != nil {
		return false, err
	}
	return false, errDown
}

// A Revoke that failed may have been stored all the same: the "not
// revoked" answer cached by the request that carried the logout must not
// outlive it.
func TestFailedRevokeDropsNotRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t)
		c := newCached(t, lostAckStore{m}, cached.WithNegativeTTL(time.Hour))
		exp := time.Now().Add(time.Hour)
		mustRevoked(t, c, "a", false, "cached as not revoked, for an hour")
		mustRevoked(t, c, "b", false, "cached as not revoked, for an hour")
		if err := c.Revoke(context.Background(), "a", exp); !errors.Is(err, errDown) {
			t.Fatalf("Revoke = %v, want the next Store's error", err)
		}
		mustRevoked(t, c, "a", true, "the failed Revoke was stored by the next Store")
		if _, err := c.RevokeOnce(context.Background(), "b", exp); !errors.Is(err, errDown) {
			t.Fatalf("RevokeOnce = %v, want the next Store's error", err)
		}
		mustRevoked(t, c, "b", true, "the failed RevokeOnce was stored by the next Store")
	})
}

func TestInvalidAndDone(t *testing.T) {
	g := newGated(t, "")
	c := newCached(t, g)
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, jti := range []string{"", string(make([]byte, blocklist.MaxIDLen+1))} {
		if _, err := c.IsRevoked(ctx, jti); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("IsRevoked(%d bytes): %v, want ErrInvalidID", len(jti), err)
		}
		if _, err := c.RevokedUntil(ctx, jti); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("RevokedUntil(%d bytes): %v, want ErrInvalidID", len(jti), err)
		}
		if err := c.Revoke(ctx, jti, time.Now().Add(time.Hour)); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("Revoke(%d bytes): %v, want ErrInvalidID", len(jti), err)
		}
	}
	mustRevoked(t, c, "cached", false, "fills the cache")
	if _, err := c.IsRevoked(done, "cached"); !errors.Is(err, context.Canceled) {
		t.Errorf("IsRevoked on a hit with a done context: %v, want context.Canceled", err)
	}
	if err := c.Revoke(done, "x", time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("Revoke with a done context: %v, want context.Canceled", err)
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1: bad input never reaches the backend", got)
	}
}

func TestStatsEvictions(t *testing.T) {
	c := newCached(t, newMemory(t), cached.WithSize(2), cached.WithoutWatch())
	for _, jti := range []string{"a", "b", "c", "a"} {
		mustRevoked(t, c, jti, false, "never revoked")
	}
	want := cached.Stats{Hits: 0, Misses: 4, BackendCalls: 4, Evictions: 2}
	if got := c.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	mustRevoked(t, c, "a", false, "cached")
	if got := c.Stats().Hits; got != 1 {
		t.Errorf("Hits = %d, want 1", got)
	}
}

func TestHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation")
	}
	// Without a watch: a starting one caches no "not revoked", and under
	// AllocsPerRun (one P) its goroutine may not run for the whole loop.
	c := newCached(t, newMemory(t), cached.WithoutWatch())
	ctx := context.Background()
	mustRevoke(t, c, "revoked", time.Now().Add(time.Hour))
	mustRevoked(t, c, "not-revoked", false, "fills the cache")
	es := blocklist.ExpiryStore(c)
	allocs := testing.AllocsPerRun(1000, func() {
		c.IsRevoked(ctx, "revoked")
		c.IsRevoked(ctx, "not-revoked")
		es.RevokedUntil(ctx, "revoked")
	})
	if allocs != 0 {
		t.Errorf("a hit allocates %v times, want 0", allocs)
	}
}

// TestEntrySize measures the memory one cached entry takes with a 36-byte id
// (a UUID), the figure behind DefaultSize.
func TestEntrySize(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap")
	}
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	m := newMemory(t)
	c := newCached(t, m, cached.WithSize(n), cached.WithNegativeTTL(time.Hour))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		mustRevoked(t, c, id, false, "fills the cache")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry with a 36-byte id", perEntry)
	if perEntry > 250 {
		t.Errorf("%.0f bytes per entry; DefaultSize's doc says about 170", perEntry)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(ids) // else their memory, freed, offsets the cache's
}

func TestNewNilPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "cached: New: nil next Store") {
			t.Errorf("New(nil) recovered %v, want a panic naming the nil next Store", p)
		}
	}()
	_, _ = cached.New(nil)
}
