package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

var (
	_ blocklist.BatchStore = (*Store)(nil)
	_ blocklist.OnceStore  = (*Store)(nil)
)

// RevokedUntilEach implements blocklist.BatchStore: every id is read in one
// read-only transaction, so the answers are one snapshot, each at the cost
// of one B+tree descent.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	const op = "revoked until each"
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("boltstore: %s: %w", op, blocklist.ErrClosed)
	}
	if len(jtis) == 0 {
		return nil
	}
	nowMs := s.now().UnixMilli()
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket(s.ids)
		if ids == nil {
			return errMissingBucket(s.ids)
		}
		for i, jti := range jtis {
			until[i] = time.Time{}
			v := ids.Get(unsafe.Slice(unsafe.StringData(jti), len(jti)))
			if v == nil {
				continue
			}
			if len(v) != 8 {
				return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(v))
			}
			if exp := decodeMillis(binary.BigEndian.Uint64(v)); exp > nowMs {
				until[i] = time.UnixMilli(exp)
			}
		}
		return nil
	})
	if err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// RevokeOnce implements blocklist.OnceStore: the read and the write happen
// in one read-write transaction, which bbolt runs one at a time, so of
// racing callers exactly one finds the id unrevoked. Like Revoke it goes
// through DB.Batch and returns once the change is fsynced.
func (s *Store) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if err := s.check(ctx, jti, "revoke once"); err != nil {
		return false, err
	}
	if !exp.After(s.now()) {
		return false, nil
	}
	entry := make([]byte, 8+len(jti))
	binary.BigEndian.PutUint64(entry, encodeMillis(expiry.CeilMillis(exp)))
	copy(entry[8:], jti)
	var first bool
	err := s.batch(func(tx *bolt.Tx) error {
		// Batch may run this more than once (after another function of
		// the batch failed); the last run is the one committed.
		first = false
		ids, _, err := s.buckets(tx)
		if err != nil {
			return err
		}
		if old := ids.Get(entry[8:]); old != nil {
			if len(old) != 8 {
				return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(old))
			}
			if decodeMillis(binary.BigEndian.Uint64(old)) > s.now().UnixMilli() {
				return nil // revoked now
			}
		}
		if err := s.put(tx, entry); err != nil {
			return err
		}
		first = true
		return nil
	})
	if err != nil {
		return false, s.wrap("revoke once", err)
	}
	return first, nil
}
