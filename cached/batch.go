package cached

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
)

var (
	_ blocklist.BatchStore = (*Store)(nil)
	_ blocklist.OnceStore  = (*Store)(nil)
)

// RevokedUntilEach implements blocklist.BatchStore. Ids whose answers are
// in memory are answered from it, with the staleness of IsRevoked; the
// others are looked up together in one call to the next Store (its own
// RevokedUntilEach when it is a blocklist.BatchStore: one round trip) and
// cached. That call runs under ctx, bounded by WithLookupTimeout, and is not
// shared with concurrent lookups of the same ids. Errors are never cached.
//
// When the next Store is not a blocklist.ExpiryStore, each missing id is
// looked up as RevokedUntil does, one after the other.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	if s.replicaReady.Load() {
		s.hits.Add(uint64(len(jtis)))
		return s.replica.RevokedUntilEach(ctx, jtis, until)
	}
	now := s.now()
	// The indexes of the ids not in memory; a token's id, session and
	// subject fit without allocating.
	var small [4]int
	missed := small[:0]
	for i, jti := range jtis {
		if e, ok := s.get(jti, now, true); ok {
			until[i] = answer(e, now)
			continue
		}
		if e, ok := s.stale(ctx, jti, now); ok {
			until[i] = answer(e, now)
			continue
		}
		missed = append(missed, i)
	}
	if len(missed) == 0 {
		return nil
	}
	if s.expiry == nil {
		for _, i := range missed {
			t, err := s.RevokedUntil(ctx, jtis[i])
			if err != nil {
				return err
			}
			until[i] = t
		}
		return nil
	}

	s.misses.Add(uint64(len(missed)))
	ids := make([]string, len(missed))
	for k, i := range missed {
		ids[k] = jtis[i]
	}
	s.mu.Lock()
	revokes := s.revokes
	s.mu.Unlock()
	negative := s.negativeEntry(now)
	timeout := s.lookupTimeout
	lost := WatchState(s.state.Load()) == WatchLost
	if lost {
		timeout = min(timeout, LostLookupTimeout)
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Stop waiting when the watch is lost meanwhile: the next Store is
	// likely unreachable or silent. Not when it is lost already: the
	// signal, given at the loss, would cancel this lookup at once, and
	// LostLookupTimeout bounds it instead.
	if !lost {
		defer context.AfterFunc(s.lostSignal(), cancel)()
	}
	s.backendCalls.Add(1)
	start := time.Now()
	got, err := bounded(lctx, func(ctx context.Context) ([]time.Time, error) {
		got := make([]time.Time, len(ids))
		return got, blocklist.RevokedUntilEach(ctx, s.expiry, ids, got)
	})
	s.obs.backendCall(start)
	if err != nil {
		s.errors.Add(1)
		return s.staleEach(ctx, jtis, until, missed, now, err)
	}
	for k, i := range missed {
		e := negative
		if !got[k].IsZero() {
			e = entry{until: unixNano(got[k]), revoked: true}
		}
		until[i] = answer(s.fill(ids[k], e, now, revokes), now)
	}
	return nil
}

// staleEach answers the ids of jtis at missed from stale-if-error, after
// the next Store failed with err; it returns err unless every one of them
// has a stale answer.
func (s *Store) staleEach(ctx context.Context, jtis []string, until []time.Time, missed []int, now int64, err error) error {
	for _, i := range missed {
		e, ok := s.stale(ctx, jtis[i], now)
		if !ok {
			return err
		}
		until[i] = answer(e, now)
	}
	return nil
}

// answer is what RevokedUntil reports for the entry e at now.
func answer(e entry, now int64) time.Time {
	if !e.revoked || now >= e.until {
		return time.Time{}
	}
	return time.Unix(0, e.until)
}

// RevokeOnce implements blocklist.OnceStore by asking the next Store, which
// alone can tell whether another process revoked jti first: the cache is
// never trusted for it. When this call made the revocation, it is recorded
// here as Revoke records one; when jti was revoked already, a cached "not
// revoked" answer for it is dropped. If the next Store is not a
// blocklist.OnceStore, RevokeOnce returns an error wrapping
// errors.ErrUnsupported.
func (s *Store) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if err := check(ctx, jti); err != nil {
		return false, err
	}
	once, ok := s.next.(blocklist.OnceStore)
	if !ok {
		return false, fmt.Errorf("cached: revoke once: the next store (%T) is not a blocklist.OnceStore: %w", s.next, errors.ErrUnsupported)
	}
	first, err := once.RevokeOnce(ctx, jti, exp)
	if err != nil {
		s.errors.Add(1)
		s.distrust(jti) // the revocation may be stored all the same
		return false, err
	}
	now := s.now()
	s.mu.Lock()
	if until := unixNano(exp); first && until > now {
		s.putLocked(jti, entry{until: until, revoked: true}, now)
	} else if old, ok := s.lru.Peek(jti); ok && !old.revoked {
		s.lru.Remove(jti)
	}
	s.revokes++
	s.mu.Unlock()
	if first && s.replica != nil {
		_ = s.replica.Revoke(context.Background(), jti, exp)
	}
	s.group.Forget(jti)
	return first, nil
}
