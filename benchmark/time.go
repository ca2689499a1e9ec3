package benchmark

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation to time, the i-th of its phase. i counts from 0
// through the warm-up and the timed operations (in Parallel, across all
// goroutines), so an operation that must not repeat itself, such as a write
// of a fresh id, can pick its input by i. Ops given to Parallel must be safe
// for concurrent use.
type Op func(ctx context.Context, i int) error

// Time runs op WithWarmup times untimed, then WithOps times timed, stopping
// early once WithMaxDuration has passed, and returns the distribution of
// its duration. The first error of op ends it, wrapped with the number of
// the operation that failed, and so does ctx being done. Measure times its
// phases with it; use it for operations Measure does not make, such as a
// lookup in a blocklist filled with a million entries.
func Time(ctx context.Context, op Op, opts ...Option) (Latency, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Latency{}, err
	}
	lat, err := timeOp(ctx, op, cfg)
	if err != nil {
		return lat, fmt.Errorf("benchmark: %w", err)
	}
	return lat, nil
}

// Parallel runs op from WithParallelism goroutines at once, WithWarmup
// times in all untimed, then WithOps times per goroutine timed, stopping
// early once WithMaxDuration has passed, and returns the rate. The first
// error of op stops every goroutine and is returned, and so is ctx being
// done.
func Parallel(ctx context.Context, op Op, opts ...Option) (Throughput, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Throughput{}, err
	}
	tp, err := parallel(ctx, op, cfg)
	if err != nil {
		return tp, fmt.Errorf("benchmark: %w", err)
	}
	return tp, nil
}

// sample is the mean duration of the n operations timed together.
type sample struct {
	d time.Duration
	n int
}

// checkEvery is how many warm-up operations run between two looks at the
// clock and the context.
const checkEvery = 16

func timeOp(ctx context.Context, op Op, cfg config) (Latency, error) {
	var lat Latency
	if op == nil {
		return lat, errors.New("nil Op")
	}
	if err := ctx.Err(); err != nil {
		return lat, err
	}

	// Warm up, and learn how long one operation takes.
	i := 0
	start := time.Now()
	warmEnd := start.Add(cfg.maxDuration / 4)
	for i < cfg.warmup {
		if err := op(ctx, i); err != nil {
			return lat, fmt.Errorf("warm-up operation %d: %w", i, err)
		}
		i++
		if i%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return lat, err
			}
			if time.Now().After(warmEnd) {
				break
			}
		}
	}
	lat.Warmup = i
	lat.Group = 1
	if i > 0 {
		per := time.Since(start) / time.Duration(i)
		if per < groupTarget {
			lat.Group = min(maxGroup, int(groupTarget/max(per, 1))+1)
		}
	}

	samples := make([]sample, 0, cfg.ops/lat.Group+1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	deadline := time.Now().Add(cfg.maxDuration)
	var total time.Duration
	for lat.Ops < cfg.ops {
		if err := ctx.Err(); err != nil {
			return lat, err
		}
		k := min(lat.Group, cfg.ops-lat.Ops)
		t0 := time.Now()
		for j := range k {
			if err := op(ctx, i+j); err != nil {
				return lat, fmt.Errorf("operation %d: %w", i+j, err)
			}
		}
		t1 := time.Now()
		d := t1.Sub(t0)
		samples = append(samples, sample{d: d / time.Duration(k), n: k})
		total += d
		i += k
		lat.Ops += k
		if t1.After(deadline) {
			break
		}
	}
	runtime.ReadMemStats(&after)

	lat.AllocsPerOp = float64(after.Mallocs-before.Mallocs) / float64(lat.Ops)
	lat.Mean = total / time.Duration(lat.Ops)
	slices.SortFunc(samples, func(a, b sample) int { return cmp.Compare(a.d, b.d) })
	lat.P50 = percentile(samples, lat.Ops, 0.50)
	lat.P99 = percentile(samples, lat.Ops, 0.99)
	lat.Max = samples[len(samples)-1].d
	return lat, nil
}

// percentile returns the q-quantile of sorted samples that hold total
// operations in all, each sample weighing as many operations as it holds:
// the duration of the operation of rank ceil(q*total).
func percentile(sorted []sample, total int, q float64) time.Duration {
	rank := max(1, int(float64(total)*q+0.999999))
	seen := 0
	for _, s := range sorted {
		seen += s.n
		if seen >= rank {
			return s.d
		}
	}
	return sorted[len(sorted)-1].d
}

// chunk is how many operation numbers a goroutine of Parallel takes at once,
// so that they do not all contend on one counter.
const chunk = 64

func parallel(ctx context.Context, op Op, cfg config) (Throughput, error) {
	tp := Throughput{Goroutines: cfg.parallelism}
	if op == nil {
		return tp, errors.New("nil Op")
	}
	if err := ctx.Err(); err != nil {
		return tp, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var next atomic.Int64 // the number of the next operation, warm-up included
	// run makes the goroutines take operation numbers below end until stop
	// is set, and returns how many operations they completed.
	run := func(end int64, stop *atomic.Bool) int64 {
		var wg sync.WaitGroup
		var done atomic.Int64
		for range cfg.parallelism {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := int64(0)
				defer func() { done.Add(n) }()
				for !stop.Load() && ctx.Err() == nil {
					first := next.Add(chunk) - chunk
					if first >= end {
						return
					}
					for i := first; i < min(first+chunk, end); i++ {
						if err := op(ctx, int(i)); err != nil {
							cancel(fmt.Errorf("operation %d: %w", i, err))
							return
						}
						n++
					}
				}
			}()
		}
		wg.Wait()
		return done.Load()
	}

	var stopWarmup, stopTimed atomic.Bool
	t := time.AfterFunc(cfg.maxDuration/4, func() { stopWarmup.Store(true) })
	tp.Warmup = int(run(int64(cfg.warmup), &stopWarmup))
	t.Stop()
	if err := context.Cause(ctx); err != nil {
		return tp, err
	}

	// Numbers go on from where the warm-up stopped, never repeating.
	end := next.Load() + int64(cfg.ops)*int64(cfg.parallelism)
	t = time.AfterFunc(cfg.maxDuration, func() { stopTimed.Store(true) })
	start := time.Now()
	tp.Ops = int(run(end, &stopTimed))
	tp.Elapsed = time.Since(start)
	t.Stop()
	if err := context.Cause(ctx); err != nil {
		return tp, err
	}
	tp.OpsPerSec = float64(tp.Ops) / tp.Elapsed.Seconds()
	return tp, nil
}
