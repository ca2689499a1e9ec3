package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/baseline"
	"github.com/jwtblocklist/blocklist/internal/measure"
)

// BenchmarkConformance runs the workload every Store of this module is
// measured with (conformance.RunBenchmarks).
func BenchmarkConformance(b *testing.B) {
	conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
		s, _ := open(b)
		return s
	})
}

// BenchmarkVersusRaw times IsRevoked and Revoke in turns with bbolt's own
// View+Get and Batch+Put, in the same file and the same run; the *-x-raw
// ratios are the cost of this package.
func BenchmarkVersusRaw(b *testing.B) {
	db := openDB(b, filepath.Join(b.TempDir(), "bench.db"))
	s, err := boltstore.New(db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	raw, err := baseline.Bolt(db)
	if err != nil {
		b.Fatal(err)
	}
	measure.Versus(b, s, raw)
}

func benchID(i int) string { return fmt.Sprintf("eyJhbGciOiJIUzI1NiJ9-%010d", i) }

// BenchmarkRevokeParallel compares 64 concurrent Revoke callers with 64
// concurrent raw db.Batch puts, each in a fresh file in the same run,
// reporting revocations per second. Both fsync once per batch.
func BenchmarkRevokeParallel(b *testing.B) {
	const callers = 64
	exp := time.Now().Add(time.Hour)
	run := func(b *testing.B, s blocklist.Store) {
		var tp measure.Throughput
		for b.Loop() {
			var err error
			tp, err = measure.Parallel(b.Context(), func(ctx context.Context, i int) error {
				return s.Revoke(ctx, benchID(i), exp)
			}, measure.WithParallelism(callers), measure.WithOps(20), measure.WithWarmup(callers),
				measure.WithMinDuration(time.Second), measure.WithMaxDuration(3*time.Second))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(tp.OpsPerSec, "revokes/s")
	}
	b.Run("store", func(b *testing.B) {
		s, _ := open(b)
		run(b, s)
	})
	b.Run("raw-bbolt-batch", func(b *testing.B) {
		raw, err := baseline.Bolt(openDB(b, filepath.Join(b.TempDir(), "raw.db")))
		if err != nil {
			b.Fatal(err)
		}
		run(b, raw)
	})
}
