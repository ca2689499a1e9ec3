package baseline

import (
	"context"
	"encoding/binary"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

// boltBucket is the bucket the raw bbolt calls use, beside the Store's.
var boltBucket = []byte("bench-raw")

// Bolt is bbolt's own View+Get and Batch+Put, the calls boltstore makes, in
// a bucket of its own in db, created here.
func Bolt(db *bolt.DB) (measure.Baseline, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		return measure.Baseline{}, err
	}
	return measure.Baseline{
		// The same call the Store makes: one Batch, one fsync per batch.
		RevokeFunc: func(_ context.Context, jti string, exp time.Time) error {
			v := binary.BigEndian.AppendUint64(nil, uint64(exp.UnixMilli()))
			k := []byte(jti)
			return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put(k, v) })
		},
		IsRevokedFunc: func(_ context.Context, jti string) (bool, error) {
			// Zero-copy, as the Store does: bbolt only reads the key.
			key := unsafe.Slice(unsafe.StringData(jti), len(jti))
			var exp int64
			err := db.View(func(tx *bolt.Tx) error {
				if v := tx.Bucket(boltBucket).Get(key); len(v) == 8 {
					exp = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
			return exp > time.Now().UnixMilli(), err
		},
	}, nil
}
