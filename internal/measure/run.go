package measure

import (
	"sync/atomic"
	"testing"

	"github.com/jwtblocklist/blocklist"
)

// freshBatch is how many fresh ids the Revoke benchmark of Run makes at a
// time, with the timer stopped.
const freshBatch = 4096

// Run runs the workload of Measure as Go benchmarks (it is
// conformance.RunBenchmarks), one sub-benchmark per
// phase, each reporting ns/op and allocs/op:
//
//	IsRevoked/revoked     IsRevoked on revoked ids
//	IsRevoked/unrevoked   IsRevoked on ids never revoked
//	Revoke                Revoke of a fresh id per call
//	IsRevoked/parallel    IsRevoked from b.RunParallel's goroutines, half revoked ids
//
// newStore is called once per sub-benchmark run and must return a store that
// shares no revocations with those of other calls (on a shared server, give
// each call its own key prefix); it registers any cleanup with b.Cleanup.
// Any error or wrong answer of the store fails the benchmark.
//
// Before timing, every id is revoked or looked up once, so that a cache in
// the Store is warm. Of the options only WithKeys and WithLifetime apply: testing.B chooses the
// counts and durations (-benchtime), and the parallel phase runs GOMAXPROCS
// goroutines (-cpu).
func Run(b *testing.B, newStore func(b *testing.B) blocklist.Store, opts ...Option) {
	b.Helper()
	cfg, err := newConfig(opts)
	if err != nil {
		b.Fatal(err)
	}
	setup := func(b *testing.B) *workload {
		b.Helper()
		s := newStore(b)
		if s == nil {
			b.Fatal("measure: newStore returned a nil Store")
		}
		w, err := newWorkload(b.Context(), s, cfg.keys, cfg.lifetime)
		if err == nil {
			err = w.prime(b.Context())
		}
		if err != nil {
			b.Fatalf("measure: setup: %v", err)
		}
		return w
	}
	lookup := func(name string, op func(w *workload) Op) {
		b.Run(name, func(b *testing.B) {
			w := setup(b)
			do, ctx := op(w), b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := do(ctx, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	lookup("IsRevoked/revoked", func(w *workload) Op { return w.isRevoked })
	lookup("IsRevoked/unrevoked", func(w *workload) Op { return w.isNotRevoked })

	b.Run("Revoke", func(b *testing.B) {
		w := setup(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%freshBatch == 0 {
				// Formatting ids is not what is measured.
				b.StopTimer()
				w.fresh = w.ids.make('n', i, freshBatch)
				b.StartTimer()
			}
			if err := w.s.Revoke(ctx, w.fresh[i%freshBatch], w.exp); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("IsRevoked/parallel", func(b *testing.B) {
		w := setup(b)
		ctx := b.Context()
		var goroutines atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine starts at other ids than its neighbours.
			i := int(goroutines.Add(1)) * 7919
			for pb.Next() {
				if err := w.mixed(ctx, i); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
