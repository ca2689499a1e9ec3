package measure

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

// Time runs op WithWarmup times untimed, then times it until it has run
// WithOps times and WithMinDuration has passed, or WithMaxDuration has
// passed, and returns the distribution of its duration. The first error of
// op ends it, wrapped with the number of the operation that failed, and so
// does ctx being done. Measure times its lookups with it; use it for
// operations Measure does not make, such as a lookup in a blocklist filled
// with a million entries.
func Time(ctx context.Context, op Op, opts ...Option) (Latency, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Latency{}, err
	}
	if op == nil {
		return Latency{}, errors.New("measure: nil Op")
	}
	p := &latencyPhase{op: op}
	if err := p.warmUp(ctx, cfg.warmup, cfg.maxDuration/4); err != nil {
		return p.latency(), fmt.Errorf("measure: %w", err)
	}
	if err := p.run(ctx, cfg.ops, cfg.minDuration, cfg.maxDuration); err != nil {
		return p.latency(), fmt.Errorf("measure: %w", err)
	}
	return p.latency(), nil
}

// Parallel runs op from WithParallelism goroutines at once: WithWarmup
// times in all untimed, then until WithOps operations per goroutine have run
// and WithMinDuration has passed, or WithMaxDuration has passed. It returns
// the rate. The first error of op stops every goroutine and is returned,
// and so is ctx being done.
func Parallel(ctx context.Context, op Op, opts ...Option) (Throughput, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Throughput{}, err
	}
	if op == nil {
		return Throughput{}, errors.New("measure: nil Op")
	}
	p := &parallelPhase{op: op, goroutines: cfg.parallelism}
	if err := p.warmUp(ctx, cfg.warmup, cfg.maxDuration/4); err != nil {
		return p.throughput(), fmt.Errorf("measure: %w", err)
	}
	if err := p.run(ctx, cfg.ops*cfg.parallelism, cfg.minDuration, cfg.maxDuration); err != nil {
		return p.throughput(), fmt.Errorf("measure: %w", err)
	}
	return p.throughput(), nil
}

// sample is the mean duration of the n operations timed together.
type sample struct {
	d time.Duration
	n int
}

// checkEvery is how many warm-up operations run between two looks at the
// clock and the context.
const checkEvery = 16

// latencyPhase accumulates the timed operations of one kind, over one or
// more rounds of run.
type latencyPhase struct {
	op      Op
	next    int // number of the next operation
	warmup  int
	group   int
	samples []sample
	ops     int
	total   time.Duration
	mallocs uint64
}

// warmUp runs up to n operations untimed, for at most d, then at least 16
// more to learn how many operations to time together.
func (p *latencyPhase) warmUp(ctx context.Context, n int, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	end := time.Now().Add(d)
	first := p.next
	for p.next-first < n {
		if err := p.op(ctx, p.next); err != nil {
			return fmt.Errorf("warm-up operation %d: %w", p.next, err)
		}
		p.next++
		if (p.next-first)%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if time.Now().After(end) {
				break
			}
		}
	}
	// Calibrate on warm operations: at least 16 of them and 50 µs.
	calStart, calFirst := time.Now(), p.next
	for p.next-calFirst < 16 || (time.Since(calStart) < 50*time.Microsecond && p.next-calFirst < maxGroup) {
		if err := p.op(ctx, p.next); err != nil {
			return fmt.Errorf("warm-up operation %d: %w", p.next, err)
		}
		p.next++
	}
	per := time.Since(calStart) / time.Duration(p.next-calFirst)
	p.warmup += p.next - first
	p.group = 1
	if per < groupTarget {
		p.group = min(maxGroup, int(groupTarget/max(per, 1))+1)
	}
	return nil
}

// run times operations until n have run and minD has passed, or maxD has
// passed, whichever comes first; at least one group always runs.
func (p *latencyPhase) run(ctx context.Context, n int, minD, maxD time.Duration) error {
	group := max(p.group, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	defer func() {
		runtime.ReadMemStats(&after)
		p.mallocs += after.Mallocs - before.Mallocs
	}()
	start := time.Now()
	minEnd, maxEnd := start.Add(minD), start.Add(maxD)
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := group
		if done < n {
			k = min(group, n-done)
		}
		t0 := time.Now()
		for j := range k {
			if err := p.op(ctx, p.next+j); err != nil {
				return fmt.Errorf("operation %d: %w", p.next+j, err)
			}
		}
		t1 := time.Now()
		d := t1.Sub(t0)
		p.samples = append(p.samples, sample{d: d / time.Duration(k), n: k})
		p.total += d
		p.next += k
		p.ops += k
		done += k
		if t1.After(maxEnd) || (done >= n && !t1.Before(minEnd)) {
			return nil
		}
	}
}

func (p *latencyPhase) latency() Latency {
	l := Latency{Ops: p.ops, Warmup: p.warmup, Group: max(p.group, 1)}
	if p.ops == 0 {
		return l
	}
	l.AllocsPerOp = float64(p.mallocs) / float64(p.ops)
	l.Mean = p.total / time.Duration(p.ops)
	sorted := slices.SortedFunc(slices.Values(p.samples), func(a, b sample) int { return cmp.Compare(a.d, b.d) })
	l.P50 = percentile(sorted, p.ops, 0.50)
	l.P99 = percentile(sorted, p.ops, 0.99)
	l.Max = sorted[len(sorted)-1].d
	return l
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

// chunk is how many operation numbers a goroutine of a parallel phase takes
// at once, so that they do not all contend on one counter.
const chunk = 64

// parallelPhase accumulates the operations of one kind run from many
// goroutines, over one or more rounds of run.
type parallelPhase struct {
	op         Op
	goroutines int
	next       atomic.Int64 // number of the next operation
	warmup     int
	ops        int
	elapsed    time.Duration
}

func (p *parallelPhase) warmUp(ctx context.Context, n int, d time.Duration) error {
	done, _, err := p.spread(ctx, p.next.Load()+int64(n), 0, d)
	p.warmup += done
	return err
}

func (p *parallelPhase) run(ctx context.Context, n int, minD, maxD time.Duration) error {
	done, elapsed, err := p.spread(ctx, p.next.Load()+int64(n), minD, maxD)
	p.ops += done
	p.elapsed += elapsed
	return err
}

// spread runs the operations numbered up to end from p.goroutines
// goroutines, and beyond end until minD has passed; all stop once maxD has
// passed. It returns how many operations completed and how long they took.
func (p *parallelPhase) spread(ctx context.Context, end int64, minD, maxD time.Duration) (int, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pastMin, pastMax atomic.Bool
	if minD <= 0 {
		pastMin.Store(true)
	}
	minTimer := time.AfterFunc(minD, func() { pastMin.Store(true) })
	maxTimer := time.AfterFunc(maxD, func() { pastMax.Store(true) })
	defer minTimer.Stop()
	defer maxTimer.Stop()

	var wg sync.WaitGroup
	var done atomic.Int64
	start := time.Now()
	for range p.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			defer func() { done.Add(n) }()
			for !pastMax.Load() && ctx.Err() == nil {
				first := p.next.Add(chunk) - chunk
				if first >= end && pastMin.Load() {
					return
				}
				for i := first; i < first+chunk; i++ {
					if err := p.op(ctx, int(i)); err != nil {
						cancel(fmt.Errorf("operation %d: %w", i, err))
						return
					}
					n++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return int(done.Load()), elapsed, context.Cause(ctx)
}

func (p *parallelPhase) throughput() Throughput {
	t := Throughput{Ops: p.ops, Warmup: p.warmup, Goroutines: p.goroutines, Elapsed: p.elapsed}
	if p.elapsed > 0 {
		t.OpsPerSec = float64(p.ops) / p.elapsed.Seconds()
	}
	return t
}
