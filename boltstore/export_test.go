package boltstore

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Held reports how many entries s's file holds, expired or not, so tests
// can see what the sweeper removed (Len counts only live revocations).
func Held(s *Store) (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		ids, _, err := s.buckets(tx)
		if err != nil {
			return err
		}
		n = ids.Stats().KeyN
		return nil
	})
	return n, err
}

// Check runs bbolt's own consistency check of db (as bbolt's test helpers
// do after every test) and this package's invariant on the blocklist in
// bucket: every id has exactly one key in the expiry index, exp||id with
// the id's exp, and the index has no other key.
func Check(db *bolt.DB, bucket string) error {
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		ids, index := tx.Bucket([]byte(bucket)), tx.Bucket([]byte(bucket+indexSuffix))
		if ids == nil || index == nil {
			return errors.Join(append(errs, fmt.Errorf("bucket %q or its index is missing", bucket))...)
		}
		n := 0
		err := ids.ForEach(func(id, exp []byte) error {
			n++
			if len(exp) != 8 {
				return fmt.Errorf("id %q: %d-byte value, want 8", id, len(exp))
			}
			if index.Get(append(bytes.Clone(exp), id...)) == nil {
				return fmt.Errorf("id %q: no index key for its exp %x", id, exp)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		if m := index.Stats().KeyN; m != n {
			errs = append(errs, fmt.Errorf("the index holds %d keys for %d ids", m, n))
		}
		return errors.Join(errs...)
	})
}
