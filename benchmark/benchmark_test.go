package benchmark_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/benchmark"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// tiny keeps the measurements of tests short.
var tiny = []benchmark.Option{
	benchmark.WithOps(300),
	benchmark.WithWarmup(30),
	benchmark.WithKeys(50),
	benchmark.WithMaxDuration(5 * time.Second),
}

func TestMeasureMemorystore(t *testing.T) {
	s := memorystore.New()
	defer s.Close()
	res, err := benchmark.Measure(t.Context(), "mem", s, append(tiny, benchmark.WithParallelism(3))...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "mem" || res.Keys != 50 {
		t.Errorf("Name, Keys = %q, %d", res.Name, res.Keys)
	}
	for name, l := range map[string]benchmark.Latency{"Revoked": res.Revoked, "Unrevoked": res.Unrevoked, "Revoke": res.Revoke} {
		if l.Ops != 300 || l.Warmup != 30 {
			t.Errorf("%s: Ops, Warmup = %d, %d; want 300, 30", name, l.Ops, l.Warmup)
		}
		if l.Group < 1 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max || l.Mean <= 0 || l.AllocsPerOp < 0 {
			t.Errorf("%s: implausible %+v", name, l)
		}
	}
	p := res.Parallel
	if p.Goroutines != 3 || p.Ops != 900 || p.Warmup < 30 || p.Elapsed <= 0 || p.OpsPerSec <= 0 {
		t.Errorf("Parallel: implausible %+v", p)
	}
	// Setup revoked 50 ids, the Revoke phase 330 more (warm-up included).
	if n := s.Len(); n != 380 {
		t.Errorf("store holds %d revocations, want 380", n)
	}
}

// liar answers false for every id, whatever was revoked.
type liar struct{ blocklist.Store }

func (liar) IsRevoked(context.Context, string) (bool, error) { return false, nil }

// failing fails every IsRevoked after the first n calls.
type failing struct {
	blocklist.Store
	left atomic.Int64
}

var errDown = errors.New("backend down")

func (f *failing) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if f.left.Add(-1) < 0 {
		return false, errDown
	}
	return f.Store.IsRevoked(ctx, jti)
}

func TestMeasureReportsWrongAnswersAndErrors(t *testing.T) {
	mem := memorystore.New()
	defer mem.Close()
	_, err := benchmark.Measure(t.Context(), "liar", liar{mem}, tiny...)
	if err == nil || !strings.Contains(err.Error(), "false for a revoked id") || !strings.Contains(err.Error(), "liar") {
		t.Errorf("Measure(liar) = %v, want an error naming the store and the wrong answer", err)
	}

	f := &failing{Store: mem}
	f.left.Store(100)
	_, err = benchmark.Measure(t.Context(), "failing", f, tiny...)
	if !errors.Is(err, errDown) {
		t.Errorf("Measure(failing) = %v, want it to wrap the store's error", err)
	}

	if _, err := benchmark.Measure(t.Context(), "nil", nil, tiny...); err == nil {
		t.Error("Measure(nil Store) returned no error")
	}
}

func TestMeasureStopsWithContext(t *testing.T) {
	mem := memorystore.New()
	defer mem.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := benchmark.Measure(ctx, "mem", mem, tiny...); !errors.Is(err, context.Canceled) {
		t.Errorf("Measure(done ctx) = %v, want context.Canceled", err)
	}

	// A context that ends during a phase stops it at the next operation.
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	slow := func(ctx context.Context, i int) error {
		time.Sleep(time.Millisecond)
		return nil
	}
	start := time.Now()
	_, err := benchmark.Time(ctx, slow, benchmark.WithOps(1_000_000), benchmark.WithWarmup(0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Time = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Time took %v after its context ended", d)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	op := func(context.Context, int) error { return nil }
	for name, opt := range map[string]benchmark.Option{
		"WithOps(0)":         benchmark.WithOps(0),
		"WithWarmup(-1)":     benchmark.WithWarmup(-1),
		"WithMaxDuration(0)": benchmark.WithMaxDuration(0),
		"WithParallelism(0)": benchmark.WithParallelism(0),
		"WithKeys(0)":        benchmark.WithKeys(0),
		"WithLifetime(-1s)":  benchmark.WithLifetime(-time.Second),
	} {
		if _, err := benchmark.Time(t.Context(), op, opt); err == nil || !strings.Contains(err.Error(), name[:strings.Index(name, "(")]) {
			t.Errorf("%s: Time error %v, want one naming the option", name, err)
		}
	}
}

func TestTimeStopsAtMaxDuration(t *testing.T) {
	op := func(context.Context, int) error { time.Sleep(time.Millisecond); return nil }
	lat, err := benchmark.Time(t.Context(), op, benchmark.WithOps(100_000), benchmark.WithWarmup(1000),
		benchmark.WithMaxDuration(80*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if lat.Ops >= 100_000 || lat.Ops < 1 || lat.Warmup >= 1000 {
		t.Errorf("Ops, Warmup = %d, %d; want both cut short by the max duration", lat.Ops, lat.Warmup)
	}
	if lat.Group != 1 {
		t.Errorf("Group = %d for a 1 ms operation, want 1", lat.Group)
	}
	if lat.P50 < time.Millisecond {
		t.Errorf("P50 = %v for a 1 ms operation", lat.P50)
	}
}

func TestTimeGroupsFastOperations(t *testing.T) {
	seen := map[int]bool{}
	op := func(_ context.Context, i int) error {
		if seen[i] {
			return errors.New("operation number repeated")
		}
		seen[i] = true
		return nil
	}
	lat, err := benchmark.Time(t.Context(), op, benchmark.WithOps(5000), benchmark.WithWarmup(500))
	if err != nil {
		t.Fatal(err)
	}
	if lat.Group < 2 || lat.Ops != 5000 {
		t.Errorf("Group, Ops = %d, %d; want a group of several fast operations and all 5000 timed", lat.Group, lat.Ops)
	}
	if len(seen) != 5500 {
		t.Errorf("%d distinct operation numbers, want 5500", len(seen))
	}
}

func TestParallelNumbersNeverRepeat(t *testing.T) {
	var seen [8000]atomic.Bool
	op := func(_ context.Context, i int) error {
		if i >= len(seen) || seen[i].Swap(true) {
			return errors.New("operation number repeated or out of range")
		}
		return nil
	}
	tp, err := benchmark.Parallel(t.Context(), op, benchmark.WithOps(1000), benchmark.WithWarmup(100), benchmark.WithParallelism(4))
	if err != nil {
		t.Fatal(err)
	}
	if tp.Ops != 4000 || tp.Goroutines != 4 {
		t.Errorf("Ops, Goroutines = %d, %d; want 4000, 4", tp.Ops, tp.Goroutines)
	}

	failAt := func(_ context.Context, i int) error {
		if i == 500 {
			return errDown
		}
		return nil
	}
	if _, err := benchmark.Parallel(t.Context(), failAt, benchmark.WithOps(1000), benchmark.WithWarmup(0)); !errors.Is(err, errDown) {
		t.Errorf("Parallel = %v, want the op's error", err)
	}
}

// BenchmarkRun runs the suite on memorystore, as a third party would on
// its own Store.
func BenchmarkRun(b *testing.B) {
	benchmark.Run(b, func(b *testing.B) blocklist.Store {
		s := memorystore.New()
		b.Cleanup(func() { s.Close() })
		return s
	})
}
