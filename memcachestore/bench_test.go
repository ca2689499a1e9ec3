package memcachestore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// BenchmarkIsRevoked measures IsRevoked beside a raw gomemcache Get of the
// same key, on the same server and client, in the same run: the ratio of
// the two is the cost of this package. "hit" reads a revoked id, "miss" one
// that was never revoked (the common case). Run with -benchmem.
func BenchmarkIsRevoked(b *testing.B) {
	client := memcache.New(testserver.Memcached(b).Addr())
	client.MaxIdleConns = 64 // enough for RunParallel: no redial per call
	s := New(client)
	ctx := context.Background()
	const revoked, absent = "550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	if err := s.Revoke(ctx, revoked, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}

	raw := func(jti string) func() error {
		key, _ := makeKey(s.prefix, jti)
		return func() error {
			_, err := client.Get(key)
			if errors.Is(err, memcache.ErrCacheMiss) {
				return nil
			}
			return err
		}
	}
	ours := func(jti string, want bool) func() error {
		return func() error {
			got, err := s.IsRevoked(ctx, jti)
			if err == nil && got != want {
				return errors.New("wrong answer")
			}
			return err
		}
	}
	cases := []struct {
		name string
		call func() error
	}{
		{"hit/raw-get", raw(revoked)},
		{"hit/IsRevoked", ours(revoked, true)},
		{"miss/raw-get", raw(absent)},
		{"miss/IsRevoked", ours(absent, false)},
	}
	for _, c := range cases {
		b.Run("serial/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("serial/hit/interleaved", func(b *testing.B) { interleave(b, false, cases[0].call, cases[1].call) })
	b.Run("serial/miss/interleaved", func(b *testing.B) { interleave(b, false, cases[2].call, cases[3].call) })
	for _, c := range cases {
		b.Run("parallel/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("parallel/hit/interleaved", func(b *testing.B) { interleave(b, true, cases[0].call, cases[1].call) })
	b.Run("parallel/miss/interleaved", func(b *testing.B) { interleave(b, true, cases[2].call, cases[3].call) })
}

// interleave alternates raw and ours call by call and times each, so both
// see the same load on a shared machine, and reports their mean latencies
// and ratio: raw-ns, ours-ns and ours/raw. Each op is one call of each.
func interleave(b *testing.B, parallel bool, raw, ours func() error) {
	var rawNs, oursNs atomic.Int64
	loop := func(next func() bool) {
		var r, o time.Duration
		for i := 0; next(); i++ {
			first, second, df, ds := raw, ours, &r, &o
			if i%2 == 1 { // alternate the order too
				first, second, df, ds = ours, raw, &o, &r
			}
			t0 := time.Now()
			if err := first(); err != nil {
				b.Error(err)
				return
			}
			t1 := time.Now()
			if err := second(); err != nil {
				b.Error(err)
				return
			}
			*df += t1.Sub(t0)
			*ds += time.Since(t1)
		}
		rawNs.Add(int64(r))
		oursNs.Add(int64(o))
	}
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
	} else {
		loop(b.Loop)
	}
	n := float64(b.N)
	b.ReportMetric(float64(rawNs.Load())/n, "raw-ns")
	b.ReportMetric(float64(oursNs.Load())/n, "ours-ns")
	b.ReportMetric(float64(oursNs.Load())/float64(rawNs.Load()), "ours/raw")
}

// BenchmarkOverhead is the work IsRevoked adds to a get, without the
// network: building the key, decoding the value, reading the clock.
func BenchmarkOverhead(b *testing.B) {
	prefix := escapePrefix(DefaultPrefix)
	for _, tc := range []struct{ name, jti string }{
		{"uuid", "550e8400-e29b-41d4-a716-446655440000"},
		{"escaped", "id with spaces\nand a newline"},
		{"hashed-1KiB", string(make([]byte, 1024))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			key, hashed := makeKey(prefix, tc.jti)
			it := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(ceilMillis(time.Now().Add(time.Hour)), tc.jti, hashed)}
			b.ReportAllocs()
			for b.Loop() {
				_, hashed := makeKey(prefix, tc.jti)
				exp, mine, err := decodeValue(it, tc.jti, hashed)
				if err != nil || !mine || time.Now().UnixMilli() >= exp {
					b.Fatal("not revoked")
				}
			}
		})
	}
}
