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

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

// Store is a blocklist.Store that answers from a local LRU cache and asks
// the next Store only on a miss. It is itself a blocklist.ExpiryStore, so
// Stores can be stacked, and a blocklist.BatchStore and OnceStore (see
// RevokedUntilEach and RevokeOnce). It is safe for concurrent use by
// multiple goroutines.
//
// When the next Store is a blocklist.WatchStore, New starts a goroutine
// that watches it (see the package documentation); Close stops it. Without
// a watch the Store starts no goroutine of its own beyond the lookups in
// flight, each bounded by WithLookupTimeout, and Close does nothing.
type Store struct {
	next   blocklist.Store
	expiry blocklist.ExpiryStore // next, when it can tell when a revocation ends; else nil

	// mu guards lru and revokes. A hit holds it for one map lookup and one
	// move to the front of the LRU list; a write (a fill after a lookup,
	// Revoke) reads the old entry and writes the new one under it, in one
	// step. One lock, not shards: see BenchmarkIsRevokedHit.
	mu  sync.Mutex
	lru *simplelru.LRU[string, entry]
	// revokes counts the revocations Revoke, RevokeOnce and the watch
	// recorded. A lookup that saw a different count when it started may have
	// read the next Store before such a revocation reached it, so its "not
	// revoked" answer is not cached: the revoked entry could have been
	// evicted meanwhile, and the answer must not take its place.
	revokes   uint64
	hits      atomic.Uint64 // updated under mu; atomic so Stats takes no lock
	evictions atomic.Uint64

	// flights are the lookups in flight that a miss may share, by id
	// (lookup.go).
	flightsMu sync.Mutex
	flights   map[string]*flight

	obs *observer // metrics and logs; see metrics.go

	negativeTTL   int64 // nanoseconds
	positiveTTL   int64 // nanoseconds
	lookupTimeout time.Duration

	misses, backendCalls, errors atomic.Uint64

	// The watch (watch.go). gen is the generation of "not revoked"
	// entries: a negative entry holds only while its gen is the current
	// one, so bumping gen distrusts them all at once, without a sweep.
	gen              atomic.Uint32
	state            atomic.Int32 // a WatchState
	watchNegativeTTL int64        // nanoseconds
	watchEvents      atomic.Uint64
	watchSyncs       atomic.Uint64
	stopWatch        context.CancelFunc // nil without a watch
	watchDone        chan struct{}
	closeOnce        sync.Once
	// lostCh is closed when the watch is lost, so that checks waiting for
	// a lookup begun while it was live stop waiting: the next Store is
	// likely unreachable or silent. A new one is made when it is back.
	lostMu     sync.Mutex
	lostCtx    context.Context
	lostCancel context.CancelFunc

	// Stale-if-error (WithStaleIfError). staleFrom is when the watch was
	// lost after being live (unix nanoseconds; 0 while no stale answer may
	// be given), staleGen the generation of the "not revoked" answers then
	// complete.
	staleIfError int64 // nanoseconds; 0 is off
	staleFrom    atomic.Int64
	staleGen     atomic.Uint32
	staleAnswers atomic.Uint64

	replica *replica // replica mode only (replica.go); nil otherwise
}

// entry is one cached answer. It is small and holds no pointer, so the
// cache copies it in and out without allocating.
type entry struct {
	until int64 // unix nanoseconds; the answer holds while now < until
	// fresh, of a revoked entry whose until is an end read from the next
	// Store, is until when that end holds (unix nanoseconds): a later
	// Revoke elsewhere may extend it, so RevokedUntil trusts it as a "not
	// revoked" answer is trusted, while now < fresh and gen is current;
	// IsRevoked needs no end and trusts it until until.
	fresh   int64
	gen     uint32 // of a "not revoked" answer, or of a revoked one's fresh: it holds only while gen is current
	revoked bool
	// lowerBound marks a revoked entry whose until is an exp this Store
	// revoked with or heard of, not one read from the next Store: the
	// revocation may last longer (an earlier Revoke with a later exp), so
	// it answers IsRevoked but RevokedUntil looks the end up.
	lowerBound bool
}

// endHolds reports whether e, a revoked entry, holds the revocation's end
// at now, under the generation gen.
func (e entry) endHolds(now int64, gen uint32) bool {
	return !e.lowerBound && now < e.fresh && e.gen == gen
}

// Stats are counters of a Store since New. Every field only grows; export
// them, or take differences between two calls.
type Stats struct {
	// Hits counts checks answered from memory, the cache's or the
	// replica's: one per IsRevoked or RevokedUntil, one per id of a
	// RevokedUntilEach. Every check of an id is a hit or a miss.
	Hits uint64
	// Misses counts checks that had to wait for a lookup in the next Store,
	// whether they started it or shared one already in flight, counted as
	// Hits are.
	Misses uint64
	// BackendCalls counts calls to the next Store's lookup methods
	// (RevokedUntil, RevokedUntilEach, or IsRevoked when it is not a
	// blocklist.ExpiryStore). Concurrent misses on one id share one lookup,
	// and the ids a batch reads go in one call (to an ExpiryStore), so this
	// can be lower than Misses. Revoke always writes through and is not
	// counted here.
	BackendCalls uint64
	// Errors counts calls to the next Store (lookups and Revokes) that
	// failed. A lookup shared by many callers counts once.
	Errors uint64
	// Evictions counts entries dropped to make room for another. If it grows
	// steadily, the cache is smaller than the set of tokens in use: raise
	// WithSize.
	Evictions uint64

	// Watch is the state of the watch of the next Store now.
	Watch WatchState
	// WatchEvents counts revocations the watch delivered, once each is
	// applied: a check that starts after the count includes one sees it.
	WatchEvents uint64
	// WatchSyncs counts the times the watch (re)started from a point where
	// it may have missed revocations: once at start, then once per gap.
	// Each distrusted every "not revoked" answer, and in replica mode
	// reloaded the replica.
	WatchSyncs uint64
	// ReplicaSize is the number of revocations the replica holds now (0
	// outside replica mode); ReplicaLoads counts its full loads.
	ReplicaSize  int
	ReplicaLoads uint64
	// ReplicaReady reports whether the replica answers checks now: loaded,
	// and the watch live.
	ReplicaReady bool

	// StaleSince is when the watch was last known complete, while
	// WithStaleIfError may answer checks from memory now (the watch is
	// lost, and less than its d has passed since); the zero Time otherwise.
	// Answers given now may be as stale as time.Since(StaleSince).
	StaleSince time.Time
	// StaleAnswers counts checks answered from memory because the next
	// Store failed (WithStaleIfError). Each is also a hit (answered
	// without a lookup while the watch is lost) or a miss (answered after
	// a lookup failed).
	StaleAnswers uint64
}

// New returns a Store that caches the answers of next. Options are applied
// in order; an invalid option (WithNegativeTTL(-1s), WithSize(0), ...)
// makes New return an error naming it. A nil next is a programming error:
// New panics, with a message naming it, as http.Handle does for a nil
// handler.
//
// If next is a blocklist.ExpiryStore, lookups use RevokedUntil, so a
// revoked answer is kept exactly until the revocation ends. Otherwise
// lookups use IsRevoked and a revoked answer is kept for WithPositiveTTL.
// The type check is made once, here.
func New(next blocklist.Store, opts ...Option) (*Store, error) {
	if next == nil {
		panic("cached: New: nil next Store")
	}
	cfg := config{
		size:          DefaultSize,
		negativeTTL:   DefaultNegativeTTL,
		positiveTTL:   DefaultPositiveTTL,
		lookupTimeout: DefaultLookupTimeout,

		watchNegativeTTL: DefaultWatchNegativeTTL,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	watcher, _ := next.(blocklist.WatchStore)
	scanner, _ := next.(blocklist.ScanStore)
	if cfg.replica {
		switch {
		case cfg.noWatch:
			cfg.fail("WithReplica and WithoutWatch: a replica needs the watch")
		case watcher == nil || scanner == nil:
			cfg.fail("WithReplica: the next store (%T) must be a blocklist.WatchStore and a blocklist.ScanStore", next)
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
		flights:       make(map[string]*flight),
		negativeTTL:   int64(cfg.negativeTTL),
		positiveTTL:   int64(cfg.positiveTTL),
		lookupTimeout: cfg.lookupTimeout,

		watchNegativeTTL: int64(cfg.watchNegativeTTL),
		staleIfError:     int64(cfg.staleIfError),
	}
	s.lostCtx, s.lostCancel = context.WithCancel(context.Background())
	s.obs = newObserver(s, cfg.observe)
	s.expiry, _ = next.(blocklist.ExpiryStore)
	if watcher != nil && !cfg.noWatch {
		if cfg.replica {
			s.replica = newReplica(scanner)
		}
		s.startWatch(watcher)
	}
	return s, nil
}

// get returns the entry of jti if it still holds at now, and counts the hit.
func (s *Store) get(jti string, now int64, needEnd bool) (entry, bool) {
	s.mu.Lock()
	e, ok := s.lru.Get(jti)
	gen := s.gen.Load()
	ok = ok && now < e.until && (e.revoked || e.gen == gen) && !(needEnd && e.revoked && !e.endHolds(now, gen))
	if ok {
		s.hits.Add(1)
	}
	s.mu.Unlock()
	return e, ok
}

// now reads the clock: once per check, since reading it costs about as much
// as the cache lookup itself.
func (s *Store) now() int64 {
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
// Store's package) and records no revocation here; since the next Store may
// have stored the revocation all the same, it drops any cached "not
// revoked" answer for jti, so the next check asks the next Store. A done
// context or an invalid id fails before the next Store is called.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := check(ctx, jti); err != nil {
		return err
	}
	if err := s.next.Revoke(ctx, jti, exp); err != nil {
		s.errors.Add(1)
		// The revocation may be stored all the same (a reply lost after
		// the write; on Redis Cluster, a failed announcement beside a
		// write that succeeded): no "not revoked" answer for jti may
		// outlive this call.
		s.distrust(jti)
		return err
	}
	s.record(jti, exp, fromRevoke)
	return nil
}

// source says how this Store learned of a revocation (see record).
type source int

const (
	fromRevoke     source = iota // exp may be below the revocation's end
	fromRevokeOnce               // RevokeOnce made the only revocation: exp is its end
	fromWatch                    // the watch announced it
)

// record notes a revocation of jti until exp, learned from src: in the
// cache, where a revocation heard by the watch goes only outside replica
// mode (the replica holds those); in the replica; and as a reason for the
// lookups of jti in flight not to cache a "not revoked" answer (see
// Store.revokes) nor to be shared by later checks, since they may have read
// the next Store before it.
func (s *Store) record(jti string, exp time.Time, src source) {
	now := s.now()
	until := unixNano(exp)
	if until <= now {
		// Already ended here, but the next Store may judge by another
		// clock: no "not revoked" answer for jti may outlive this call.
		s.distrust(jti)
		return
	}
	s.mu.Lock()
	switch {
	case src == fromRevokeOnce:
		// Its end, until a later Revoke elsewhere extends it.
		s.putLocked(jti, s.negativeEntry(now).revokedUntil(until), now)
	case src == fromRevoke || s.replica == nil:
		s.putRevokedLocked(jti, until, now)
	}
	s.revokes++
	s.mu.Unlock()
	s.replica.apply(jti, exp)
	s.forget(jti)
}

// distrust drops the cached "not revoked" answer for jti, if any, and keeps
// lookups in flight from caching or sharing theirs: jti may have been
// revoked by a call whose outcome this Store does not know.
func (s *Store) distrust(jti string) {
	s.mu.Lock()
	if old, ok := s.lru.Peek(jti); ok && !old.revoked {
		s.lru.Remove(jti)
	}
	s.revokes++
	s.mu.Unlock()
	s.forget(jti)
}

// IsRevoked reports whether jti is revoked, from memory when it can. A "not
// revoked" answer may be as stale as "How stale an answer can be" in the
// package documentation allows; a "revoked" answer is kept until the
// revocation ends, and turns false on time. On a miss it asks the next
// Store, sharing the lookup with concurrent misses on the same id, single
// or batched. Errors are never cached: an error from the next Store is
// returned as is, and the next check asks again. A caller whose context
// ends while waiting gets an error wrapping ctx.Err().
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if err := check(ctx, jti); err != nil {
		return false, err
	}
	ids, until := [1]string{jti}, [1]time.Time{}
	err := s.answer(ctx, ids[:], until[:], false)
	return err == nil && !until[0].IsZero(), err
}

// RevokedUntil reports when the revocation of jti ends, or the zero Time
// when it is not revoked now, from memory when it can, with the staleness
// and errors of IsRevoked. An end may be as stale as a "not revoked"
// answer: a later Revoke elsewhere can extend it.
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
	ids, until := [1]string{jti}, [1]time.Time{}
	if err := s.answer(ctx, ids[:], until[:], true); err != nil {
		return time.Time{}, err
	}
	return until[0], nil
}

// answer is every check, single or batched: it sets until[i] to when the
// revocation of jtis[i] ends (the zero Time: not revoked), from the
// replica while it is ready, else from the cache or stale-if-error's
// window, else from a lookup (lookup.go). It is the one place that chooses
// among them. needEnd asks for the revocation's end; without it, a cached
// lower bound of the end will do (IsRevoked asks only whether there is
// one).
func (s *Store) answer(ctx context.Context, jtis []string, until []time.Time, needEnd bool) error {
	if s.replica.serves() {
		s.hits.Add(uint64(len(jtis)))
		return s.replica.answer(ctx, jtis, until)
	}
	now := s.now()
	// The indexes of the ids not in memory; a token's id, session and
	// subject fit without allocating.
	var small [4]int
	missed := small[:0]
	for i, jti := range jtis {
		e, ok := s.get(jti, now, needEnd)
		if !ok {
			if e, ok = s.stale(ctx, jti, now); ok {
				s.hits.Add(1) // from memory, without a lookup
			}
		}
		if !ok {
			missed = append(missed, i)
			continue
		}
		until[i] = end(e, now)
	}
	if len(missed) == 0 {
		return nil
	}
	ids, out := make([]string, len(missed)), make([]entry, len(missed))
	for k, i := range missed {
		ids[k] = jtis[i]
	}
	if err := s.lookup(ctx, ids, now, out, needEnd); err != nil {
		return err
	}
	for k, i := range missed {
		until[i] = end(out[k], now)
	}
	return nil
}

// end is what RevokedUntil reports for the entry e at now.
func end(e entry, now int64) time.Time {
	if !e.revoked || now >= e.until {
		return time.Time{}
	}
	return time.Unix(0, e.until)
}

// Stats returns the counters of the Store. It is cheap: atomic loads, and
// in replica mode the replica's size under its read lock.
func (s *Store) Stats() Stats {
	st := Stats{
		Hits:         s.hits.Load(),
		Misses:       s.misses.Load(),
		BackendCalls: s.backendCalls.Load(),
		Errors:       s.errors.Load(),
		Evictions:    s.evictions.Load(),
		Watch:        WatchState(s.state.Load()),
		WatchEvents:  s.watchEvents.Load(),
		WatchSyncs:   s.watchSyncs.Load(),
		ReplicaSize:  s.replica.size(),
		ReplicaLoads: s.replica.loadCount(),
		ReplicaReady: s.replica.serves(),
	}
	if from, ok := s.staleWindow(s.now()); ok {
		st.StaleSince = time.Unix(0, from)
	}
	st.StaleAnswers = s.staleAnswers.Load()
	return st
}

// putRevokedLocked caches that jti is revoked at least until until, an exp
// this Store just revoked with or heard of. The next Store keeps the latest
// exp of every revocation of jti, so the end is known only when the entry
// cached is an end read from it, still live and holding (entry.fresh):
// then it is the later of the two. Otherwise the entry is a lower bound.
// s.mu must be held.
func (s *Store) putRevokedLocked(jti string, until, now int64) {
	e := entry{until: until, revoked: true, lowerBound: true}
	if old, ok := s.lru.Peek(jti); ok && old.revoked && old.until > now && old.endHolds(now, s.gen.Load()) {
		e.lowerBound, e.fresh, e.gen = false, old.fresh, old.gen
	}
	s.putLocked(jti, e, now)
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
func unixNano(t time.Time) int64 { return expiry.UnixNano(t) }

// sat returns now+d, saturated at the largest int64.
func sat(now, d int64) int64 {
	if now > math.MaxInt64-d {
		return math.MaxInt64
	}
	return now + d
}
