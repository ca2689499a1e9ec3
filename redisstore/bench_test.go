package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/redisstore"
)

// BenchmarkIsRevoked measures IsRevoked beside the raw go-redis EXISTS it
// wraps, on the same server and client in the same run, serial and
// parallel. Compare store with raw-exists in each mode: the difference is
// this package's cost (id check, context check, key concatenation).
func BenchmarkIsRevoked(b *testing.B) {
	client := newClient(b, sharedServer(b).Addr())
	prefix := uniquePrefix(b)
	s := redisstore.New(client, redisstore.WithPrefix(prefix))
	ctx := context.Background()
	const jti = "0190a4c2-7b8e-7d3f-9a51-6c2e8f4b1d07"
	if err := s.Revoke(ctx, jti, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	key := prefix + jti

	b.Run("mode=serial/store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("mode=serial/raw-exists", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, err := client.Exists(ctx, key).Result(); err != nil || n != 1 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("mode=parallel/store", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
					b.Error(ok, err)
					return
				}
			}
		})
	})
	b.Run("mode=parallel/raw-exists", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if n, err := client.Exists(ctx, key).Result(); err != nil || n != 1 {
					b.Error(n, err)
					return
				}
			}
		})
	})
}

// BenchmarkRevoke measures one Revoke (MULTI, PEXPIREAT GT, SET NX PXAT,
// EXEC in one round trip) beside a raw SET PXAT of the same key, which is
// what a non-monotonic store would send.
func BenchmarkRevoke(b *testing.B) {
	client := newClient(b, sharedServer(b).Addr())
	prefix := uniquePrefix(b)
	s := redisstore.New(client, redisstore.WithPrefix(prefix))
	ctx := context.Background()
	const jti = "0190a4c2-7b8e-7d3f-9a51-6c2e8f4b1d07"
	exp := time.Now().Add(time.Hour)

	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Revoke(ctx, jti, exp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-set-pxat", func(b *testing.B) {
		b.ReportAllocs()
		key, ms := prefix+"raw:"+jti, exp.UnixMilli()
		for b.Loop() {
			if err := client.Do(ctx, "set", key, "1", "pxat", ms).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRevokedUntil measures RevokedUntil, one PEXPIRETIME.
func BenchmarkRevokedUntil(b *testing.B) {
	client := newClient(b, sharedServer(b).Addr())
	s := redisstore.New(client, redisstore.WithPrefix(uniquePrefix(b)))
	ctx := context.Background()
	const jti = "0190a4c2-7b8e-7d3f-9a51-6c2e8f4b1d07"
	if err := s.Revoke(ctx, jti, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if until, err := s.RevokedUntil(ctx, jti); err != nil || until.IsZero() {
			b.Fatal(until, err)
		}
	}
}
