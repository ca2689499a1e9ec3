package cached

import (
	"context"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// WatchState is the state of a Store's watch of the next Store.
type WatchState int32

const (
	// WatchOff: no watch. The next Store is not a blocklist.WatchStore,
	// WithoutWatch was given, its Watch returned an error (one that
	// retrying cannot fix, such as errors.ErrUnsupported: announcements
	// are off), or the Store was closed. "Not revoked" answers are kept for
	// NegativeTTL.
	WatchOff WatchState = iota
	// WatchStarting: the watch is connecting (or, in replica mode,
	// loading the replica). "Not revoked" answers are not cached.
	WatchStarting
	// WatchLive: announcements arrive. "Not revoked" answers are kept for
	// WatchNegativeTTL; in replica mode the replica answers every check.
	WatchLive
	// WatchLost: the watch cannot reach the backend, and revocations made
	// now may not reach this Store. Every "not revoked" answer cached
	// before was dropped when it was lost, none is cached until it is live
	// again, and every check of a token not known to be revoked asks the
	// next Store.
	WatchLost
)

// String returns "off", "starting", "live" or "lost".
func (w WatchState) String() string {
	switch w {
	case WatchOff:
		return "off"
	case WatchStarting:
		return "starting"
	case WatchLive:
		return "live"
	case WatchLost:
		return "lost"
	}
	return "unknown"
}

// loadRetry is the pause before the replica tries a full load again
// after one failed.
const loadRetry = time.Second

// startWatch starts the goroutine that watches w until Close.
func (s *Store) startWatch(w blocklist.WatchStore) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	s.watchDone = make(chan struct{})
	s.state.Store(int32(WatchStarting))
	go s.runWatch(ctx, w)
}

// runWatch subscribes to w until Close. The WatchStore keeps the
// connection: it reconnects by itself and reports each change as an event
// (Lost, then Resumed or Synced), which onEvent turns into the Store's
// state. So there is one reconnect state machine, the WatchStore's, and no
// loop here: Watch returns before Close only for an error that retrying
// cannot fix (blocklist.WatchStore), and the Store then goes on as a cache
// without a watch (WatchOff).
func (s *Store) runWatch(ctx context.Context, w blocklist.WatchStore) {
	defer close(s.watchDone)
	err := w.Watch(ctx, func(ev blocklist.Event) { s.onEvent(ctx, ev) })
	if ctx.Err() != nil {
		return // Close
	}
	s.errors.Add(1)
	s.obs.watchEnded(err)
	s.replica.lock()
	s.replica.cancelLoadLocked()
	s.setState(WatchOff)
	s.replica.unlock()
}

// setState moves the watch to st and starts a new generation of "not
// revoked" answers, so that none cached before is trusted any more. The
// generation is bumped before the state is written, and again after;
// lookups read them in the other order (see negativeEntry).
func (s *Store) setState(st WatchState) {
	if st == WatchLost {
		s.recordStale()
	} else {
		s.staleFrom.Store(0)
	}
	if st != WatchLive {
		s.replica.setReady(false)
	}
	// A lookup that reads a state other than lost must find a lost signal
	// not yet given: renew it before the state is published, and give it
	// only after.
	s.lostMu.Lock()
	if st != WatchLost && s.lostCtx.Err() != nil {
		s.lostCtx, s.lostCancel = context.WithCancel(context.Background())
	}
	s.lostMu.Unlock()
	// The generation moves both before and after the state. Before: a
	// check that reads the new state (Stats, or a lookup) must not then
	// find a "not revoked" answer of the old generation still trusted by
	// get; with the bump only after, a check could see the watch lost and
	// still answer from memory what was cached before the loss (found by
	// the chaos test over a frozen link). After: a lookup that read the
	// first bump's generation with the old state (negativeEntry reads
	// them in the other order) must not have its answer trusted either.
	s.gen.Add(1)
	prev := WatchState(s.state.Swap(int32(st)))
	s.gen.Add(1)
	if st == WatchLost {
		s.lostMu.Lock()
		s.lostCancel() // lookups in flight stop waiting
		s.lostMu.Unlock()
	}
	s.obs.stateChanged(prev, st)
}

// lostSignal returns a context canceled once the watch is lost.
func (s *Store) lostSignal() context.Context {
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	return s.lostCtx
}

// recordStale notes, as the watch is lost, what stale-if-error may answer
// from: the "not revoked" answers of the current generation and the
// replica, if the watch was live and so complete until now.
func (s *Store) recordStale() {
	if s.staleIfError == 0 || WatchState(s.state.Load()) != WatchLive {
		return
	}
	s.staleGen.Store(s.gen.Load())
	s.replica.lost()
	s.staleFrom.Store(s.now())
}

// staleWindow reports whether stale-if-error may answer at now, and since
// when the watch was lost.
func (s *Store) staleWindow(now int64) (int64, bool) {
	from := s.staleFrom.Load()
	if from == 0 || now >= sat(from, s.staleIfError) || WatchState(s.state.Load()) != WatchLost {
		return 0, false
	}
	return from, true
}

// stale returns the answer stale-if-error gives for jti at now, after the
// next Store failed: from the replica if it was complete when the watch
// was lost, else from a cached answer that was. A caller whose context
// ended gets none: its lookup did not fail, it gave up.
func (s *Store) stale(ctx context.Context, jti string, now int64) (entry, bool) {
	if ctx.Err() != nil {
		return entry{}, false
	}
	if _, ok := s.staleWindow(now); !ok {
		return entry{}, false
	}
	if e, ok := s.replica.stale(jti, now); ok {
		s.staleAnswers.Add(1)
		return e, true
	}
	s.mu.Lock()
	e, ok := s.lru.Peek(jti)
	s.mu.Unlock()
	if !ok || now >= e.until || !e.revoked && e.gen != s.staleGen.Load() {
		return entry{}, false
	}
	s.staleAnswers.Add(1)
	return e, true
}

// onEvent applies one event of the watch: the only place the watch's
// events change the Store.
func (s *Store) onEvent(ctx context.Context, ev blocklist.Event) {
	kind := ev.Kind
	if kind == blocklist.Resumed && s.watchSyncs.Load() == 0 {
		// A watch that never synced has nothing to resume from (the
		// contract's first event is Synced or Lost, then Synced): take it
		// as a Synced, so that a replica is loaded before it answers.
		kind = blocklist.Synced
	}
	if kind == blocklist.Revoked {
		s.record(ev.JTI, ev.Exp, fromWatch)
		s.watchEvents.Add(1) // after: Stats.WatchEvents counts what checks see
		s.obs.applied(ev.Announced)
		return
	}
	s.replica.lock()
	defer s.replica.unlock()
	switch kind {
	case blocklist.Synced:
		// Revocations made before this point may not have been delivered.
		s.watchSyncs.Add(1)
		if s.replica != nil {
			s.setState(WatchStarting)
			s.startLoadLocked(ctx)
			return
		}
		s.setState(WatchLive)
	case blocklist.Resumed:
		// Everything missed while lost was delivered before this event;
		// the replica, once its load since the last Synced is complete,
		// is complete again.
		if s.replica != nil && !s.replica.loaded {
			s.setState(WatchStarting) // the load goes on; it makes the watch live
			return
		}
		s.setState(WatchLive)
		s.replica.setReady(true)
	case blocklist.Lost:
		s.setState(WatchLost)
	}
}

// startLoadLocked starts a full load of the replica in a goroutine of its
// own, in place of any load running, and makes the watch live with the
// replica answering when it completes, unless the watch was lost
// meanwhile (Resumed then does it) or another load replaced it. The watch
// goes on during the load, applying what is announced to the replica, so
// the replica starts answering with everything announced while it loaded:
// a load inside the watch's callback held those back until after it.
// s.replica.mu must be held.
func (s *Store) startLoadLocked(ctx context.Context) {
	r := s.replica
	r.cancelLoadLocked()
	seq := r.seq
	lctx, stop := context.WithCancel(ctx)
	r.stop = stop
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		defer stop()
		if !r.load(lctx, loadRetry, &s.errors) {
			return // replaced, or closed
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.seq != seq {
			return // replaced by a later Synced, or the watch ended
		}
		r.stop, r.loaded = nil, true
		if WatchState(s.state.Load()) == WatchStarting {
			s.setState(WatchLive)
			r.setReady(true)
		}
	}()
}

// Close stops the watch of the next Store, if there is one, and waits for
// its goroutine to end (at most about a quarter second over redisstore),
// then frees the replica. The Store stays usable as a cache without a
// watch: "not revoked" answers cached while the watch was live are dropped,
// and later ones are kept for NegativeTTL. Close does not close the next
// Store. It is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.obs.close()
		if s.stopWatch == nil {
			return
		}
		s.stopWatch() // and the load running, if any
		<-s.watchDone
		s.replica.lock()
		s.replica.cancelLoadLocked()
		s.setState(WatchOff)
		s.replica.unlock()
		s.replica.close()
	})
	return nil
}
