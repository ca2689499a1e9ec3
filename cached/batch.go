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
// others are looked up as IsRevoked looks up one: each shares the lookup
// of its id already in flight, single or batched, and the rest are read
// together in one call to the next Store (its own RevokedUntilEach when it
// is a blocklist.BatchStore: one round trip) and cached. Errors are never
// cached.
//
// When the next Store is not a blocklist.ExpiryStore, each id to read is
// looked up with its IsRevoked, one after the other.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	return s.answer(ctx, jtis, until, true)
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
	if first {
		s.record(jti, exp, fromRevokeOnce)
	} else {
		s.distrust(jti) // revoked before: a cached "not revoked" is wrong
	}
	return first, nil
}
