package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/baseline"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// BenchmarkConformance runs the workload every Store of this module is
// measured with (conformance.RunBenchmarks).
func BenchmarkConformance(b *testing.B) {
	client := redistest.Client(b, redisServer.Get(b).Addr())
	conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
		return redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(b)))
	})
}

// BenchmarkVersusRaw times IsRevoked and Revoke in turns with a raw
// go-redis EXISTS and SET PXAT on the same server and client in the same
// run; the *-x-raw ratios are the cost of this package (id and context
// checks, the key, PEXPIREAT GT and SET NX in one MULTI/EXEC, the
// announcement).
func BenchmarkVersusRaw(b *testing.B) {
	client := redistest.Client(b, redisServer.Get(b).Addr())
	prefix := redistest.Prefix(b)
	measure.Versus(b, redisstore.New(client, redisstore.WithPrefix(prefix)), baseline.Redis(client, prefix))
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
