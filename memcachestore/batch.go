package memcachestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

var (
	_ blocklist.BatchStore = (*Store)(nil)
	_ blocklist.OnceStore  = (*Store)(nil)
)

// RevokedUntilEach implements blocklist.BatchStore with one GetMulti: one
// get command per server holding any of the ids, sent to the servers at
// once by gomemcache. Answers are read as in RevokedUntil, exact to the
// millisecond.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("memcachestore: revoked until each: %w", err)
	}
	if len(jtis) == 0 {
		return nil
	}
	keys := make([]string, len(jtis))
	hashed := make([]bool, len(jtis))
	for i, jti := range jtis {
		keys[i], hashed[i] = makeKey(s.prefix, jti)
	}
	items, err := s.getMulti(ctx, keys)
	if err != nil {
		return fmt.Errorf("memcachestore: revoked until each: %w", err)
	}
	nowMs := time.Now().UnixMilli()
	for i, jti := range jtis {
		until[i] = time.Time{}
		it, ok := items[keys[i]]
		if !ok {
			continue // a miss: not revoked
		}
		expMs, mine, err := decodeValue(it, jti, hashed[i])
		if err != nil {
			return fmt.Errorf("memcachestore: revoked until each: %w", err)
		}
		if mine && nowMs < expMs {
			until[i] = time.UnixMilli(expMs)
		}
	}
	return nil
}

func (s *Store) getMulti(ctx context.Context, keys []string) (map[string]*memcache.Item, error) {
	if !s.deadlineBeforeTimeout(ctx) {
		return s.client.GetMulti(keys)
	}
	return untilDone(ctx, func() (map[string]*memcache.Item, error) { return s.client.GetMulti(keys) })
}

// RevokeOnce implements blocklist.OnceStore with memcached's add, which
// stores an entry only when the key holds none, atomically on the server
// that owns the key. When an entry is there but its revocation has ended
// (memcached keeps entries up to a couple of seconds past their exp), it is
// replaced with a compare-and-swap, so that of racing callers only one
// replaces it. The usual case costs one round trip.
func (s *Store) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if err := s.check(ctx, "revoke once", jti); err != nil {
		return false, err
	}
	if !exp.After(time.Now()) {
		return false, nil
	}
	expMs := expiry.CeilMillis(exp)
	key, hashed := makeKey(s.prefix, jti)
	item := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(expMs, jti, hashed)}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := ctx.Err(); err != nil {
				return false, fmt.Errorf("memcachestore: revoke once: %w", err)
			}
		}
		item.CasID = 0
		item.Expiration = expiration(expMs, time.Now())
		err := s.store(ctx, (*memcache.Client).Add, item)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, memcache.ErrNotStored) {
			return false, fmt.Errorf("memcachestore: revoke once: add: %w", err)
		}
		cur, err := s.get(ctx, key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue // gone since the add: add again
		}
		if err != nil {
			return false, fmt.Errorf("memcachestore: revoke once: get: %w", err)
		}
		curMs, mine, err := decodeValue(cur, jti, hashed)
		if err != nil {
			return false, fmt.Errorf("memcachestore: revoke once: %w", err)
		}
		if !mine {
			return false, errors.New("memcachestore: revoke once: key holds another id (SHA-256 collision); not stored")
		}
		if time.Now().UnixMilli() < curMs {
			return false, nil // revoked now
		}
		// An entry whose revocation has ended, not yet dropped by memcached.
		item.CasID = cur.CasID
		item.Expiration = expiration(expMs, time.Now())
		err = s.store(ctx, (*memcache.Client).CompareAndSwap, item)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, memcache.ErrCASConflict),
			errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
			continue // another caller changed it first: look again
		default:
			return false, fmt.Errorf("memcachestore: revoke once: compare-and-swap: %w", err)
		}
	}
	return false, fmt.Errorf("memcachestore: revoke once: entry changed by concurrent callers in each of %d rounds", maxAttempts)
}
