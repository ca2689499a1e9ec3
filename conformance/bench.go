package conformance

import (
	"testing"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/measure"
)

// RunBenchmarks runs the workload every Store of this module is measured
// with as Go benchmarks, one sub-benchmark per operation, each reporting
// ns/op and allocs/op, so that a third party's Store gets figures that can
// be set beside ours:
//
//	IsRevoked/revoked     IsRevoked on revoked ids (36-byte, UUID-like)
//	IsRevoked/unrevoked   IsRevoked on ids never revoked
//	Revoke                Revoke of a fresh id per call, as on a logout
//	IsRevoked/parallel    IsRevoked from b.RunParallel's goroutines, half revoked
//
// newStore is called once per sub-benchmark run and must return a store
// that shares no revocations with those of other calls (on a shared server,
// give each call its own key prefix); it registers any cleanup with
// b.Cleanup. Before timing, a thousand ids are revoked and every id is
// looked up once, so that a cache in the Store is warm. Any error or wrong
// answer fails the benchmark:
//
//	func BenchmarkStore(b *testing.B) {
//		conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
//			s := mystore.New( /* a fresh namespace per call */ )
//			b.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) blocklist.Store) {
	b.Helper()
	measure.Run(b, newStore)
}
