package boltstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/boltstore"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkIsRevoked compares a lookup through the Store with a raw bbolt
// View + Get of the same key, in the same file and the same run.
func BenchmarkIsRevoked(b *testing.B) {
	const entries = 10000
	db := openDB(b, filepath.Join(b.TempDir(), "bench.db"))
	s, err := boltstore.New(db)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < entries; i += 64 {
				if err := s.Revoke(ctx, benchID(i), exp); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	const jti = "eyJhbGciOiJIUzI1NiJ9-0000005000" // a revoked id, JWT-like length
	if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
		b.Fatalf("IsRevoked(%q) = %v, %v", jti, ok, err)
	}

	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := s.IsRevoked(ctx, jti)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("raw-bbolt", func(b *testing.B) {
		bucket, key := []byte(boltstore.DefaultBucket), []byte(jti)
		b.ReportAllocs()
		for b.Loop() {
			var exp uint64
			err := db.View(func(tx *bolt.Tx) error {
				if v := tx.Bucket(bucket).Get(key); len(v) == 8 {
					exp = binary.BigEndian.Uint64(v)
				}
				return nil
			})
			if err != nil || exp == 0 {
				b.Fatal(exp, err)
			}
		}
	})
}

func benchID(i int) string { return fmt.Sprintf("eyJhbGciOiJIUzI1NiJ9-%010d", i) }

// BenchmarkRevokeParallel compares 64 concurrent Revoke callers with 64
// concurrent raw db.Batch puts of the same keys, each in a fresh file in the
// same run. Both fsync once per batch.
func BenchmarkRevokeParallel(b *testing.B) {
	const callers = 64
	exp := time.Now().Add(time.Hour)
	b.Run("store", func(b *testing.B) {
		s, _ := open(b)
		ctx := context.Background()
		runCallers(b, callers, func(i int) error { return s.Revoke(ctx, benchID(i), exp) })
	})
	b.Run("raw-bbolt-batch", func(b *testing.B) {
		db := openDB(b, filepath.Join(b.TempDir(), "raw.db"))
		bucket := []byte("raw")
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
			b.Fatal(err)
		}
		runCallers(b, callers, func(i int) error {
			key := []byte(benchID(i))
			val := binary.BigEndian.AppendUint64(nil, uint64(exp.UnixMilli()))
			return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, val) })
		})
	})
}

// runCallers runs b.N calls of op spread over n goroutines.
func runCallers(b *testing.B, n int, op func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
