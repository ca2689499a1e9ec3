package cached

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/jwtblocklist/blocklist"
)

// Store is a blocklist.Store that answers from a local LRU cache and asks
// the next Store only on a miss. It is itself a blocklist.ExpiryStore, so
// Stores can be stacked, and a blocklist.BatchStore and OnceStore (see
// RevokedUntilEach and RevokeOnce). It is safe for concurrent use by
// multiple goroutines and needs no Close: it starts no goroutine of its own
// beyond the lookups in flight, each bounded by WithLookupTimeout.
type Store struct {
	next   blocklist.Store
	expiry blocklist.ExpiryStore // next, when it can tell when a revocation ends; else nil

	// mu guards lru and revokes. A hit holds it for one map lookup and one
	// move to the front of the LRU list; a write (a fill after a lookup,
	// Revoke) reads the old entry and writes the new one under it, in one
	// step. One lock, not shards: see BenchmarkIsRevokedHit.
	mu  sync.Mutex
	lru *simplelru.LRU[string, entry]
	// revokes counts the revocations Revoke and RevokeOnce recorded. A
	// lookup that saw a different count when it started may have read the
	// next Store before such a revocation reached it, so its "not revoked"
	// answer is not cached.
	revokes   uint64
	hits      atomic.Uint64 // updated under mu; atomic so Stats takes no lock
	evictions atomic.Uint64

	group singleflight.Group

	negativeTTL   int64 // nanoseconds
	positiveTTL   int64 // nanoseconds
	lookupTimeout time.Duration
	clock         func() time.Time // nil means time.Now

	misses, backendCalls, errors atomic.Uint64
}

// entry is one cached answer. It is small and holds no pointer, so the
// cache copies it in and out without allocating.
//
// A later watch capability (revocations pushed by the next Store) fits
// here: it can add a generation to negative entries, so every "not revoked"
// answer is distrusted at once when the watch is lost, and write the
// revocations it receives through putLocked, as Revoke does.
type entry struct {
	until   int64 // unix nanoseconds; the answer holds while now < until
	revoked bool
}

// Stats are counters of a Store since New. Every field only grows; export
// them, or take differences between two calls.
type Stats struct {
	// Hits counts checks (IsRevoked, RevokedUntil) answered from memory.
	Hits uint64
	// Misses counts checks that had to wait for a lookup in the next Store,
	// whether they started it or shared one already in flight.
	Misses uint64
	// BackendCalls counts lookups sent to the next Store. Concurrent misses
	// on one id share one lookup, so this can be lower than Misses. Revoke
	// always writes through and is not counted here.
	BackendCalls uint64
	// Errors counts calls to the next Store (lookups and Revokes) that
	// failed. A lookup shared by many callers counts once.
	Errors uint64
	// Evictions counts entries dropped to make room for another. If it grows
	// steadily, the cache is smaller than the set of tokens in use: raise
	// WithSize.
	Evictions uint64
}

// New returns a Store that caches the answers of next. Options are applied
// in order; an invalid option (WithNegativeTTL(-1s), WithSize(0), ...)
// makes New return an error naming it.
//
// If next is a blocklist.ExpiryStore, lookups use RevokedUntil, so a
// revoked answer is kept exactly until the revocation ends. Otherwise
// lookups use IsRevoked and a revoked answer is kept for WithPositiveTTL.
// The type check is made once, here.
func New(next blocklist.Store, opts ...Option) (*Store, error) {
	if next == nil {
		return nil, fmt.Errorf("cached: New: next store is nil")
	}
	cfg := config{
		size:          DefaultSize,
		negativeTTL:   DefaultNegativeTTL,
		positiveTTL:   DefaultPositiveTTL,
		lookupTimeout: DefaultLookupTimeout,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if err := cfg.err(); err != nil {
		return nil, err
	}
	lru, err := simplelru.NewLRU[string, entry](cfg.size, nil)
	if err != nil {
		return nil, fmt.Errorf("cached: %w", err)
	}
	s := &Store{
		next:          next,
		lru:           lru,
		negativeTTL:   int64(cfg.negativeTTL),
		positiveTTL:   int64(cfg.positiveTTL),
		lookupTimeout: cfg.lookupTimeout,
		clock:         cfg.clock,
	}
	s.expiry, _ = next.(blocklist.ExpiryStore)
	return s, nil
}

// get returns the entry of jti if it still holds at now, and counts the hit.
func (s *Store) get(jti string, now int64) (entry, bool) {
	s.mu.Lock()
	e, ok := s.lru.Get(jti)
	ok = ok && now < e.until
	if ok {
		s.hits.Add(1)
	}
	s.mu.Unlock()
	return e, ok
}

// now reads the clock: once per check, since reading it costs about as much
// as the cache lookup itself.
func (s *Store) now() int64 {
	if s.clock != nil {
		return s.clock().UnixNano()
	}
	return time.Now().UnixNano()
}

// check applies the rules every method starts with: a done context, then
// an invalid id, fail before any work.
func check(ctx context.Context, jti string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	if err := blocklist.ValidateID(jti); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	return nil
}

// Revoke writes the revocation through to the next Store and, only when
// that succeeded, records it here, so IsRevoked in this process answers true
// at once. The local entry keeps the later of its exp and the new one, like
// every Store. An error from the next Store is returned as is (it names that
// Store's package) and leaves the cache unchanged. A done context or an
// invalid id fails before the next Store is called.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := check(ctx, jti); err != nil {
		return err
	}
	if err := s.next.Revoke(ctx, jti, exp); err != nil {
		s.errors.Add(1)
		return err
	}
	until, now := unixNano(exp), s.now()
	if until <= now {
		return nil // nothing was stored: the token is dead anyway
	}
	s.mu.Lock()
	s.putLocked(jti, entry{until: until, revoked: true}, now)
	s.revokes++
	s.mu.Unlock()
	// A lookup of jti already in flight may have read the next Store before
	// this revocation; later checks must not share its answer.
	s.group.Forget(jti)
	return nil
}

// IsRevoked reports whether jti is revoked, from memory when it can. A
// "not revoked" answer may be up to NegativeTTL old (see WithNegativeTTL);
// a "revoked" answer is kept until the revocation ends, and turns false on
// time. On a miss it asks the next Store, sharing the lookup with
// concurrent misses on the same id. Errors are never cached: an error from
// the next Store is returned as is, and the next check asks again. A caller
// whose context ends while waiting gets an error wrapping ctx.Err().
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if err := check(ctx, jti); err != nil {
		return false, err
	}
	now := s.now()
	if e, ok := s.get(jti, now); ok {
		return e.revoked, nil
	}
	e, err := s.lookup(ctx, jti, now)
	if err != nil {
		return false, err
	}
	return e.revoked && now < e.until, nil
}

// RevokedUntil reports when the revocation of jti ends, or the zero Time
// when it is not revoked now, from memory when it can, with the staleness
// and errors of IsRevoked.
//
// When the next Store is not a blocklist.ExpiryStore, the end of a
// revocation this process did not write is unknown; RevokedUntil then
// answers the time until which this Store will keep answering true (at
// most WithPositiveTTL from the lookup), which is earlier than the
// revocation's real end.
func (s *Store) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if err := check(ctx, jti); err != nil {
		return time.Time{}, err
	}
	now := s.now()
	e, ok := s.get(jti, now)
	if !ok {
		var err error
		if e, err = s.lookup(ctx, jti, now); err != nil {
			return time.Time{}, err
		}
	}
	if !e.revoked || now >= e.until {
		return time.Time{}, nil
	}
	return time.Unix(0, e.until), nil
}

// Stats returns the counters of the Store. It is cheap: five atomic loads,
// no lock.
func (s *Store) Stats() Stats {
	return Stats{
		Hits:         s.hits.Load(),
		Misses:       s.misses.Load(),
		BackendCalls: s.backendCalls.Load(),
		Errors:       s.errors.Load(),
		Evictions:    s.evictions.Load(),
	}
}

// lookup asks the next Store about jti, sharing one call among concurrent
// misses, and caches the answer. now is the caller's reading of the clock,
// taken before the call: a "not revoked" entry then expires NegativeTTL
// after a moment that precedes the read in the next Store, which keeps the
// staleness bound.
func (s *Store) lookup(ctx context.Context, jti string, now int64) (entry, error) {
	s.misses.Add(1)
	// The lookup runs in its own goroutine, detached from the caller's
	// cancellation: one caller giving up must not fail the others sharing
	// it. WithLookupTimeout bounds it instead.
	ch := s.group.DoChan(jti, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lookupTimeout)
		defer cancel()
		return s.fetch(lctx, jti, now)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return entry{}, r.Err
		}
		return r.Val.(entry), nil
	case <-ctx.Done():
		return entry{}, fmt.Errorf("cached: %w", ctx.Err())
	}
}

// fetch makes one lookup in the next Store and caches its answer.
func (s *Store) fetch(ctx context.Context, jti string, now int64) (entry, error) {
	s.backendCalls.Add(1)
	s.mu.Lock()
	revokes := s.revokes
	s.mu.Unlock()
	var e entry
	if s.expiry != nil {
		until, err := s.expiry.RevokedUntil(ctx, jti)
		if err != nil {
			s.errors.Add(1)
			return entry{}, err
		}
		if until.IsZero() {
			e = entry{until: sat(now, s.negativeTTL)}
		} else {
			e = entry{until: unixNano(until), revoked: true}
		}
	} else {
		revoked, err := s.next.IsRevoked(ctx, jti)
		if err != nil {
			s.errors.Add(1)
			return entry{}, err
		}
		if revoked {
			e = entry{until: sat(now, s.positiveTTL), revoked: true}
		} else {
			e = entry{until: sat(now, s.negativeTTL)}
		}
	}
	if e.until <= now {
		return e, nil // already stale (NegativeTTL 0, or a revocation just ending)
	}
	s.mu.Lock()
	if e.revoked || s.revokes == revokes {
		e = s.putLocked(jti, e, now)
	}
	s.mu.Unlock()
	return e, nil
}

// putLocked merges e into the entry of jti and returns the entry kept.
// Revocation is monotonic here too: a revoked entry is never shortened,
// and a "not revoked" answer never replaces a revoked entry still live at
// now. s.mu must be held.
func (s *Store) putLocked(jti string, e entry, now int64) entry {
	if old, ok := s.lru.Peek(jti); ok && old.revoked {
		if e.revoked && old.until > e.until || !e.revoked && old.until > now {
			return old
		}
	}
	// Clone the key: the caller's string may share memory with a larger
	// buffer (a request, a token) that the cache must not keep alive.
	if s.lru.Add(strings.Clone(jti), e) {
		s.evictions.Add(1)
	}
	return e
}

// unixNano is t.UnixNano, saturated for times beyond the year 2262 that
// int64 nanoseconds cannot hold.
func unixNano(t time.Time) int64 {
	if t.Unix() >= math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	if t.Unix() <= math.MinInt64/int64(time.Second) {
		return math.MinInt64
	}
	return t.UnixNano()
}

// sat returns now+d, saturated at the largest int64.
func sat(now, d int64) int64 {
	if now > math.MaxInt64-d {
		return math.MaxInt64
	}
	return now + d
}
