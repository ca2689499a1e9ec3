package boltstore

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sweepChunk bounds the deletions of one sweep transaction, so that a large
// backlog of expired entries never holds the write lock for long.
const sweepChunk = 1000

// sweepLoop removes expired entries at once and then every interval, until
// Close.
func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// A failed sweep is retried at the next tick; it removes nothing,
		// and lookups never count on the sweeper. Whatever broke it (a
		// closed or damaged database) also fails Revoke and IsRevoked,
		// which return the error to their callers.
		_ = s.sweep()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// sweepInline is how many expired entries a Revoke removes in its own
// transaction when no sweeper runs (WithSweepInterval(0)): more than one, so
// that a backlog shrinks while revocations keep coming.
const sweepInline = 2

// sweep deletes every entry whose exp has passed, walking the expiry index
// from its start: O(expired), in transactions of at most sweepChunk
// deletions.
func (s *Store) sweep() error {
	now := s.nowKey()
	for {
		// A read transaction first, so that an idle store never takes the
		// write lock or fsyncs.
		var due bool
		err := s.view(func(tx *bolt.Tx) error {
			_, index, err := s.buckets(tx)
			if err != nil {
				return err
			}
			k, _ := index.Cursor().First()
			due = expired(k, now)
			return nil
		})
		if err != nil || !due {
			return err
		}
		var more bool
		err = s.update(func(tx *bolt.Tx) (err error) {
			more, err = s.deleteExpired(tx, now, sweepChunk)
			return err
		})
		if err != nil || !more {
			return err
		}
		select {
		case <-s.stop:
			return nil
		default:
		}
	}
}

// nowKey returns the current time as the first 8 bytes of an index key.
func (s *Store) nowKey() [8]byte {
	var now [8]byte
	binary.BigEndian.PutUint64(now[:], encodeMillis(s.now().UnixMilli()))
	return now
}

// expired reports whether the index key k is an entry whose exp is not
// after now.
func expired(k []byte, now [8]byte) bool {
	return k != nil && (len(k) < 8 || bytes.Compare(k[:8], now[:]) <= 0)
}

// deleteExpired deletes up to limit expired entries, soonest first, and
// reports whether more are due.
func (s *Store) deleteExpired(tx *bolt.Tx, now [8]byte, limit int) (more bool, err error) {
	ids, index, err := s.buckets(tx)
	if err != nil {
		return false, err
	}
	c := index.Cursor()
	for n := 0; ; n++ {
		// First again after each delete: a bbolt cursor may skip a key
		// when Next follows Delete.
		k, _ := c.First()
		if !expired(k, now) {
			return false, nil
		}
		if n == limit {
			return true, nil
		}
		if len(k) > 8 {
			// Delete the id only if this index key is its current exp; a
			// later revocation has its own index key.
			if v := ids.Get(k[8:]); v != nil && bytes.Equal(v, k[:8]) {
				if err := ids.Delete(k[8:]); err != nil {
					return false, err
				}
			}
		}
		if err := c.Delete(); err != nil {
			return false, err
		}
	}
}
