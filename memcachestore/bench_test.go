package memcachestore

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/baseline"
	"github.com/jwtblocklist/blocklist/internal/expiry"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// BenchmarkConformance runs the workload every Store of this module is
// measured with (conformance.RunBenchmarks).
func BenchmarkConformance(b *testing.B) {
	client := benchClient(b)
	conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
		return New(client, WithPrefix("bench:"+rand.Text()+":"))
	})
}

// BenchmarkVersusRaw times IsRevoked and Revoke in turns with the raw
// gomemcache Get and Set they are built on, on the same server and client
// in the same run; the *-x-raw ratios are the cost of this package.
func BenchmarkVersusRaw(b *testing.B) {
	client := benchClient(b)
	prefix := "bench:" + rand.Text() + ":"
	measure.Versus(b, New(client, WithPrefix(prefix)), baseline.Memcache(client, prefix))
}

// benchClient is a client of a test server with enough idle connections
// for RunParallel: no redial per call.
func benchClient(b *testing.B) *memcache.Client {
	client := memcache.New(testserver.Memcached(b).Addr())
	client.MaxIdleConns = 64
	return client
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
			it := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(expiry.CeilMillis(time.Now().Add(time.Hour)), tc.jti, hashed)}
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
