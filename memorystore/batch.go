package memorystore

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
)

var (
	_ blocklist.BatchStore = (*Store)(nil)
	_ blocklist.OnceStore  = (*Store)(nil)
)

// RevokedUntilEach implements blocklist.BatchStore: every id is read under
// one shared lock, so the answers are one snapshot.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("memorystore: %w", err)
	}
	if s.closed.Load() {
		return fmt.Errorf("memorystore: %w", blocklist.ErrClosed)
	}
	now := unixNano(time.Now())
	s.mu.RLock()
	for i, jti := range jtis {
		if exp, ok := s.entries[jti]; ok && exp > now {
			until[i] = time.Unix(0, exp)
		} else {
			until[i] = time.Time{}
		}
	}
	s.mu.RUnlock()
	return nil
}

// RevokeOnce implements blocklist.OnceStore: the check and the write happen
// under one exclusive lock.
func (s *Store) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if err := s.check(ctx, jti); err != nil {
		return false, err
	}
	now := time.Now()
	if !exp.After(now) {
		return false, nil
	}
	e, n := unixNano(exp), unixNano(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(n)
	if old, ok := s.entries[jti]; ok && old > n {
		return false, nil
	}
	s.entries[jti] = e
	heap.Push(&s.expiry, expiryItem{exp: e, jti: jti})
	s.announceLocked(jti, e, n)
	return true, nil
}
