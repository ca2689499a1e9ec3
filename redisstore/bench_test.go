package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// BenchmarkIsRevoked measures IsRevoked beside the raw go-redis EXISTS it
// wraps, on the same server and client in the same run, serial and
// parallel. Compare store with raw-exists in each mode (ns/op, B/op,
// allocs/op): the difference is this package's cost (id check, context
// check, building the key). The raw call gets its key prebuilt, so it pays
// nothing for prefix+jti. The interleaved modes report the ratio directly.
func BenchmarkIsRevoked(b *testing.B) {
	client := redistest.Client(b, redisServer.Get(b).Addr())
	prefix := redistest.Prefix(b)
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
	// On a busy machine the runs above can each see a different load. In
	// the interleaved modes every IsRevoked is paired with a raw EXISTS, so
	// both see the same load, and the medians of their call times ignore the
	// stalls a shared machine adds: store/raw is our overhead.
	isRevoked := func() error {
		if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
			return fmt.Errorf("IsRevoked = %v, %v", ok, err)
		}
		return nil
	}
	exists := func() error {
		if n, err := client.Exists(ctx, key).Result(); err != nil || n != 1 {
			return fmt.Errorf("EXISTS = %v, %v", n, err)
		}
		return nil
	}
	b.Run("mode=serial-interleaved", func(b *testing.B) {
		var p pairs
		for b.Loop() {
			if err := p.time(isRevoked, exists); err != nil {
				b.Fatal(err)
			}
		}
		p.report(b)
	})
	b.Run("mode=parallel-interleaved", func(b *testing.B) {
		var mu sync.Mutex
		var all pairs
		b.RunParallel(func(pb *testing.PB) {
			var p pairs
			for pb.Next() {
				if err := p.time(isRevoked, exists); err != nil {
					b.Error(err)
					break
				}
			}
			mu.Lock()
			all.ours, all.raw = append(all.ours, p.ours...), append(all.raw, p.raw...)
			mu.Unlock()
		})
		all.report(b)
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
	client := redistest.Client(b, redisServer.Get(b).Addr())
	prefix := redistest.Prefix(b)
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
	client := redistest.Client(b, redisServer.Get(b).Addr())
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(b)))
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

// pairs holds the call times of interleaved runs of our call and the raw one.
type pairs struct {
	ours, raw []time.Duration
}

// time runs ours and raw once each, alternating which goes first so that
// the order favours neither.
func (p *pairs) time(ours, raw func() error) error {
	run := func(f func() error, into *[]time.Duration) error {
		start := time.Now()
		err := f()
		*into = append(*into, time.Since(start))
		return err
	}
	if len(p.ours)%2 == 0 {
		return errors.Join(run(ours, &p.ours), run(raw, &p.raw))
	}
	return errors.Join(run(raw, &p.raw), run(ours, &p.ours))
}

func (p *pairs) report(b *testing.B) {
	if len(p.ours) == 0 || len(p.raw) == 0 {
		return
	}
	o, r := median(p.ours), median(p.raw)
	b.ReportMetric(float64(o.Nanoseconds()), "store-p50-ns")
	b.ReportMetric(float64(r.Nanoseconds()), "raw-p50-ns")
	b.ReportMetric(float64(o)/float64(r), "store/raw")
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
