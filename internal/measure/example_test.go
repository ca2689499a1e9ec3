package measure_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// Measure runs a Store through the workload and reports percentiles,
// throughput and allocations, with the number of operations behind each.
func ExampleMeasure() {
	s := memorystore.New()
	defer s.Close()

	res, err := measure.Measure(context.Background(), "memorystore", s,
		measure.WithOps(2000), measure.WithWarmup(200),
		measure.WithMinDuration(0), measure.WithMaxDuration(time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("timed:", res.Revoked.Ops, res.Unrevoked.Ops, res.Revoke.Ops)
	fmt.Println("p50 <= p99:", res.Revoked.P50 <= res.Revoked.P99)
	fmt.Println("parallel goroutines > 0:", res.Parallel.Goroutines > 0)
	// Output:
	// timed: 2000 2000 2000
	// p50 <= p99: true
	// parallel goroutines > 0: true
}

// A raw client is measured by the same code when wrapped as a Baseline:
// here the map and lock that memorystore is built on.
func ExampleBaseline() {
	var mu sync.RWMutex
	m := map[string]int64{}
	raw := measure.Baseline{
		RevokeFunc: func(ctx context.Context, jti string, exp time.Time) error {
			mu.Lock()
			m[jti] = exp.UnixNano()
			mu.Unlock()
			return nil
		},
		IsRevokedFunc: func(ctx context.Context, jti string) (bool, error) {
			mu.RLock()
			exp := m[jti]
			mu.RUnlock()
			return exp > time.Now().UnixNano(), nil
		},
	}
	res, err := measure.Measure(context.Background(), "raw map", raw,
		measure.WithOps(500), measure.WithWarmup(50),
		measure.WithMinDuration(0), measure.WithMaxDuration(time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Name, res.Revoked.Ops)
	// Output:
	// raw map 500
}

// Run puts the same workload under go test -bench, beside conformance.Run.
func ExampleRun() {
	benchmarkStore := func(b *testing.B) {
		measure.Run(b, func(b *testing.B) blocklist.Store {
			s := memorystore.New()
			b.Cleanup(func() { s.Close() })
			return s
		})
	}
	_ = benchmarkStore // in a _test.go file: func BenchmarkStore(b *testing.B) { ... }
}
