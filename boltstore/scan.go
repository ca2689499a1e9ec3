package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jwtblocklist/blocklist"
)

var _ blocklist.ScanStore = (*Store)(nil)

// scanChunk is how many entries ScanRevoked copies out of one read-only
// transaction before it calls fn for them.
const scanChunk = 1000

// scanned is one live entry copied out of a transaction.
type scanned struct {
	jti   string
	until int64 // Unix milliseconds
}

// ScanRevoked implements blocklist.ScanStore: it walks the ids bucket in key
// order, in read-only transactions of at most a thousand entries, and calls
// fn between them, never inside one, so fn may call the Store (a bbolt
// write waiting for a read transaction of its own goroutine would never
// run). It costs one B+tree walk of the bucket and memory for one chunk;
// entries revoked or extended between two chunks may or may not be seen.
func (s *Store) ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error {
	const op = "scan revoked"
	if fn == nil {
		return errors.New("boltstore: scan revoked: nil function")
	}
	var (
		after []byte // the last key read; nil before the first chunk
		chunk = make([]scanned, 0, scanChunk)
	)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("boltstore: %s: %w", op, err)
		}
		if s.closed.Load() {
			return fmt.Errorf("boltstore: %s: %w", op, blocklist.ErrClosed)
		}
		nowMs := s.now().UnixMilli()
		chunk = chunk[:0]
		more := false
		err := s.view(func(tx *bolt.Tx) error {
			ids := tx.Bucket(s.ids)
			if ids == nil {
				return errMissingBucket(s.ids)
			}
			c := ids.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				if len(chunk) == scanChunk {
					more = true
					return nil
				}
				if len(v) != 8 {
					return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(v))
				}
				after = append(after[:0], k...)
				if exp := decodeMillis(binary.BigEndian.Uint64(v)); exp > nowMs {
					chunk = append(chunk, scanned{jti: string(k), until: exp})
				}
			}
			return nil
		})
		if err != nil {
			return s.wrap(op, err)
		}
		for _, e := range chunk {
			if err := fn(e.jti, time.UnixMilli(e.until)); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}
