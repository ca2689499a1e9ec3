package cached

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// This file is the one path from a miss to an answer, for single checks
// (IsRevoked, RevokedUntil) and batches (RevokedUntilEach) alike: a miss
// joins the lookup of its id already in flight or starts one (a batch
// starts one read of the next Store for all the ids it leads), the answer
// is cached under the checks of fill, and a failure falls back to
// stale-if-error.

// flight is one lookup of one id in the next Store. While it runs, every
// check that misses on the id waits for it instead of asking again
// (singleflight, per id); one read of the next Store may serve several
// flights (a batch).
type flight struct {
	done chan struct{} // closed once e and err are set
	e    entry
	err  error
}

// wait returns the answer of f, or an error as soon as ctx is done or lost
// is closed (a nil lost is never closed), whichever comes first; an answer
// already there wins.
func (f *flight) wait(ctx context.Context, lost <-chan struct{}) (entry, error) {
	select {
	case <-f.done:
		return f.e, f.err
	default:
	}
	select {
	case <-f.done:
		return f.e, f.err
	case <-ctx.Done():
		return entry{}, fmt.Errorf("cached: %w", ctx.Err())
	case <-lost:
		return entry{}, errLookupAbandoned
	}
}

// errLookupAbandoned is what a check waiting for a shared lookup gets when
// the watch is lost meanwhile.
var errLookupAbandoned = errors.New("cached: lookup abandoned: the watch lost the next store")

// lookup answers out[k] for ids[k], ids a check found neither in memory
// nor in stale-if-error's window at now, and counts each as a miss. It
// returns an error, and out is meaningless, when the next Store could not
// answer for one of them and stale-if-error has no answer for it either.
//
// While the watch is live (or off), a miss shares the lookup of its id
// already in flight, started by a single check or a batch, and the lookups
// it starts are shared in turn; they run detached from the caller's
// cancellation, bounded by WithLookupTimeout, and a caller stops waiting
// when the watch is lost. While the watch is starting or lost, a check
// reads the next Store for itself (an answer read before it began may
// predate a revocation this Store has not heard of), bounded by
// LostLookupTimeout while lost.
func (s *Store) lookup(ctx context.Context, ids []string, now int64, out []entry, needEnd bool) error {
	s.misses.Add(uint64(len(ids)))
	st := WatchState(s.state.Load())
	return s.read(ctx, ids, now, out, needEnd, st, st == WatchStarting || st == WatchLost)
}

// read is lookup without the count: needEnd says whether the caller needs
// the revocations' ends, own whether to read for this caller alone, st is
// the watch's state read before.
func (s *Store) read(ctx context.Context, ids []string, now int64, out []entry, needEnd bool, st WatchState, own bool) error {
	var lost <-chan struct{}
	wctx := ctx
	if own {
		timeout := s.lookupTimeout
		if st == WatchLost {
			timeout = min(timeout, LostLookupTimeout)
		}
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	} else {
		lost = s.lostSignal().Done()
	}
	flights, mine := s.board(wctx, ids, now, own)
	var again []int
	for k, f := range flights {
		e, err := f.wait(wctx, lost)
		if p, ok := err.(*lookupPanic); ok {
			panic(p) // in this caller, as a direct call to the next Store would
		}
		if err == nil && !own && (!e.revoked || needEnd) && !s.sharedHolds(e, now, f.done == mine) {
			again = append(again, k)
			continue
		}
		if err != nil {
			var ok bool
			if e, ok = s.stale(ctx, ids[k], now); !ok {
				return err
			}
		}
		out[k] = e
	}
	if len(again) == 0 {
		return nil
	}
	ids2, out2 := make([]string, len(again)), make([]entry, len(again))
	for j, k := range again {
		ids2[j] = ids[k]
	}
	if err := s.read(ctx, ids2, now, out2, needEnd, WatchState(s.state.Load()), true); err != nil {
		return err
	}
	for j, k := range again {
		out[k] = out2[j]
	}
	return nil
}

// sharedHolds reports whether e, the answer of a shared lookup, may be
// given at now: a "not revoked", or a revocation's end (which a later
// Revoke may extend), is read again for this caller when the lookup began
// before the watch was lost or resynced (possibly long before this call: a
// read held by a frozen link), since it may predate revocations this Store
// never heard of; or when another check started it longer ago than such
// an answer may be kept (a slow lookup, a TTL of 0), since it would then be
// staler than a cached one may be. mine says whether this call started it.
func (s *Store) sharedHolds(e entry, now int64, mine bool) bool {
	fresh := e.until
	if e.revoked {
		if e.lowerBound {
			return mine
		}
		fresh = e.fresh
	}
	return e.gen == s.gen.Load() && (mine || now < fresh)
}

// board returns a flight for each of ids: the one in flight for the id,
// when shared (not own) and there is one, or a new one. The new ones are
// read from the next Store together, in a goroutine of their own: under
// ctx when own; when shared, detached from ctx's cancellation (a caller
// giving up must not fail the others) and bounded by WithLookupTimeout.
// mine is the done channel of the new ones (nil when there are none): a
// flight whose done is mine was started by this call.
func (s *Store) board(ctx context.Context, ids []string, now int64, own bool) (flights []*flight, mine chan struct{}) {
	flights = make([]*flight, len(ids))
	var (
		led    []flight // the flights this call starts: one read, one done
		ledIDs []string
		done   chan struct{}
	)
	if !own {
		s.flightsMu.Lock()
	}
	for k, id := range ids {
		if !own {
			if f, ok := s.flights[id]; ok {
				flights[k] = f
				continue
			}
		}
		if led == nil {
			led, ledIDs = make([]flight, 0, len(ids)-k), make([]string, 0, len(ids)-k)
			done = make(chan struct{})
		}
		led = append(led, flight{done: done}) // within capacity: never moves
		f := &led[len(led)-1]
		ledIDs = append(ledIDs, id)
		if !own {
			s.flights[id] = f
		}
		flights[k] = f
	}
	if !own {
		s.flightsMu.Unlock()
	}
	if led == nil {
		return flights, nil
	}
	cancel := context.CancelFunc(func() {})
	if !own {
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.lookupTimeout)
	}
	go func() {
		defer cancel()
		es, err := s.fetchRecovered(ctx, ledIDs, now)
		for j := range led {
			if err != nil {
				led[j].err = err
			} else {
				led[j].e = es[j]
			}
		}
		if !own {
			s.flightsMu.Lock()
			for j, id := range ledIDs {
				if s.flights[id] == &led[j] {
					delete(s.flights, id)
				}
			}
			s.flightsMu.Unlock()
		}
		close(done)
	}()
	return flights, done
}

// lookupPanic is what a lookup whose next Store panicked leaves for the
// checks waiting for it: each panics with it in its own goroutine, where
// the caller (net/http, say) may recover it, as it would a panic of a
// direct call; a panic left in the lookup's goroutine would end the
// process.
type lookupPanic struct {
	value any
	stack []byte
}

func (p *lookupPanic) Error() string {
	return fmt.Sprintf("cached: the next store panicked in a lookup: %v\n\n%s", p.value, p.stack)
}

// fetchRecovered is fetch, with a panic of the next Store returned as a
// *lookupPanic and counted in Errors.
func (s *Store) fetchRecovered(ctx context.Context, ids []string, now int64) (es []entry, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.errors.Add(1)
			es, err = nil, &lookupPanic{value: v, stack: debug.Stack()}
		}
	}()
	return s.fetch(ctx, ids, now)
}

// forget keeps later checks of jti from sharing the lookup of it in
// flight, which may have read the next Store before a revocation this
// Store just learned of.
func (s *Store) forget(jti string) {
	s.flightsMu.Lock()
	delete(s.flights, jti)
	s.flightsMu.Unlock()
}

// fetch reads ids from the next Store, in one call when it is a
// blocklist.ExpiryStore (its RevokedUntilEach when it is a BatchStore: one
// round trip), and caches the answers. now is the reading of the clock of
// the check that started it, taken before the call: a "not revoked" entry
// then expires its TTL (negativeEntry) after a moment that precedes the
// read in the next Store, which keeps the staleness bound.
func (s *Store) fetch(ctx context.Context, ids []string, now int64) ([]entry, error) {
	s.mu.Lock()
	revokes := s.revokes
	s.mu.Unlock()
	negative := s.negativeEntry(now)
	es := make([]entry, len(ids))
	if s.expiry != nil {
		s.backendCalls.Add(1)
		start := time.Now()
		var err error
		until := make([]time.Time, len(ids))
		if len(ids) == 1 {
			until[0], err = s.expiry.RevokedUntil(ctx, ids[0])
		} else {
			err = blocklist.RevokedUntilEach(ctx, s.expiry, ids, until)
		}
		s.obs.backendCall(start)
		if err != nil {
			s.errors.Add(1)
			return nil, err
		}
		for k, u := range until {
			e := negative
			if !u.IsZero() {
				e = negative.revokedUntil(unixNano(u))
			}
			es[k] = s.fill(ids[k], e, now, revokes)
		}
		return es, nil
	}
	for k, id := range ids {
		s.backendCalls.Add(1)
		start := time.Now()
		revoked, err := s.next.IsRevoked(ctx, id)
		s.obs.backendCall(start)
		if err != nil {
			s.errors.Add(1)
			return nil, err
		}
		e := negative
		if revoked {
			e = negative.revokedUntil(sat(now, s.positiveTTL))
		}
		es[k] = s.fill(id, e, now, revokes)
	}
	return es, nil
}

// negativeEntry returns the "not revoked" entry a lookup starting at now
// would cache: kept for WatchNegativeTTL while the watch is live, for
// NegativeTTL without a watch, and not at all (until == now) while a watch
// is starting or lost. The generation is read before the state: the watch
// writes them in the other order, so a lookup never pairs a new state with
// an old generation.
func (s *Store) negativeEntry(now int64) entry {
	gen := s.gen.Load()
	switch WatchState(s.state.Load()) {
	case WatchOff:
		return entry{until: sat(now, s.negativeTTL), gen: gen}
	case WatchLive:
		return entry{until: sat(now, s.watchNegativeTTL), gen: gen}
	}
	return entry{until: now, gen: gen}
}

// revokedUntil returns the entry of a revocation ending at until, read
// from the next Store by a lookup whose "not revoked" entry is n: its end
// holds as n would (entry.fresh).
func (n entry) revokedUntil(until int64) entry {
	return entry{until: until, revoked: true, fresh: n.until, gen: n.gen}
}

// fill caches e, the answer of a lookup that started at now when the
// count of local revocations was revokes, and returns the entry to answer
// with. A "not revoked" answer is not cached when a revocation was recorded
// here, or the watch changed generation, since the lookup started.
func (s *Store) fill(jti string, e entry, now int64, revokes uint64) entry {
	if e.until <= now {
		return e // already stale (a TTL of 0, or a revocation just ending)
	}
	s.mu.Lock()
	if e.revoked || s.revokes == revokes && e.gen == s.gen.Load() {
		e = s.putLocked(jti, e, now)
	}
	s.mu.Unlock()
	return e
}
