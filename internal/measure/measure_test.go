package measure_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// tiny keeps the measurements of tests short.
var tiny = []measure.Option{
	measure.WithOps(300),
	measure.WithWarmup(30),
	measure.WithKeys(50),
	measure.WithMinDuration(0),
	measure.WithMaxDuration(5 * time.Second),
}

func TestMeasureMemorystore(t *testing.T) {
	s := memorystore.New()
	defer s.Close()
	res, err := measure.Measure(t.Context(), "mem", s, append(tiny, measure.WithParallelism(3))...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "mem" || res.Keys != 50 {
		t.Errorf("Name, Keys = %q, %d", res.Name, res.Keys)
	}
	// The lookups' warm-up asks for each of the 50 ids at least once; every
	// warm-up then runs at least 16 operations to calibrate.
	for name, l := range map[string]measure.Latency{"Revoked": res.Revoked, "Unrevoked": res.Unrevoked, "Revoke": res.Revoke} {
		if wantWarm := map[bool]int{true: 30, false: 50}[name == "Revoke"] + 16; l.Ops != 300 || l.Warmup < wantWarm {
			t.Errorf("%s: Ops, Warmup = %d, %d; want 300, at least %d", name, l.Ops, l.Warmup, wantWarm)
		}
		if l.Group < 1 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max || l.Mean <= 0 || l.AllocsPerOp < 0 {
			t.Errorf("%s: implausible %+v", name, l)
		}
	}
	p := res.Parallel
	if p.Goroutines != 3 || p.Ops < 900 || p.Warmup < 100 || p.Elapsed <= 0 || p.OpsPerSec <= 0 {
		t.Errorf("Parallel: implausible %+v", p)
	}
	if res.Baseline != nil {
		t.Errorf("Baseline = %+v without WithBaseline", res.Baseline)
	}
	// Setup revoked 50 ids, the Revoke phase one per operation.
	if n, want := s.Len(), 50+res.Revoke.Warmup+res.Revoke.Ops; n != want {
		t.Errorf("store holds %d revocations, want %d", n, want)
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
	_, err := measure.Measure(t.Context(), "liar", liar{mem}, tiny...)
	if err == nil || !strings.Contains(err.Error(), "false for a revoked id") || !strings.Contains(err.Error(), "liar") {
		t.Errorf("Measure(liar) = %v, want an error naming the store and the wrong answer", err)
	}

	f := &failing{Store: mem}
	f.left.Store(100)
	_, err = measure.Measure(t.Context(), "failing", f, tiny...)
	if !errors.Is(err, errDown) {
		t.Errorf("Measure(failing) = %v, want it to wrap the store's error", err)
	}

	if _, err := measure.Measure(t.Context(), "nil", nil, tiny...); err == nil {
		t.Error("Measure(nil Store) returned no error")
	}
}

func TestMeasureStopsWithContext(t *testing.T) {
	mem := memorystore.New()
	defer mem.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := measure.Measure(ctx, "mem", mem, tiny...); !errors.Is(err, context.Canceled) {
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
	_, err := measure.Time(ctx, slow, measure.WithOps(1_000_000), measure.WithWarmup(0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Time = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Time took %v after its context ended", d)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	op := func(context.Context, int) error { return nil }
	for name, opt := range map[string]measure.Option{
		"WithOps(0)":         measure.WithOps(0),
		"WithWarmup(-1)":     measure.WithWarmup(-1),
		"WithMaxDuration(0)": measure.WithMaxDuration(0),
		"WithParallelism(0)": measure.WithParallelism(0),
		"WithKeys(0)":        measure.WithKeys(0),
		"WithLifetime(-1s)":  measure.WithLifetime(-time.Second),
	} {
		if _, err := measure.Time(t.Context(), op, opt); err == nil || !strings.Contains(err.Error(), name[:strings.Index(name, "(")]) {
			t.Errorf("%s: Time error %v, want one naming the option", name, err)
		}
	}
}

func TestTimeStopsAtMaxDuration(t *testing.T) {
	op := func(context.Context, int) error { time.Sleep(time.Millisecond); return nil }
	lat, err := measure.Time(t.Context(), op, measure.WithOps(100_000), measure.WithWarmup(1000),
		measure.WithMaxDuration(80*time.Millisecond))
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

func TestMinDurationExtendsFastPhases(t *testing.T) {
	op := func(context.Context, int) error { return nil }
	start := time.Now()
	lat, err := measure.Time(t.Context(), op, measure.WithOps(10), measure.WithWarmup(10),
		measure.WithMinDuration(30*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if lat.Ops <= 10 || time.Since(start) < 30*time.Millisecond {
		t.Errorf("Ops = %d after %v; want the phase to go on for the minimum duration", lat.Ops, time.Since(start))
	}
}

// TestBaselineTakesTurns checks that the Store and its baseline alternate
// within a phase, and that each gets its own figures.
func TestBaselineTakesTurns(t *testing.T) {
	mem := memorystore.New()
	defer mem.Close()
	var log []byte
	var last byte
	track := func(who byte, s blocklist.Store) blocklist.Store {
		return measure.Baseline{
			RevokeFunc: s.Revoke,
			IsRevokedFunc: func(ctx context.Context, jti string) (bool, error) {
				if who != last {
					log = append(log, who)
					last = who
				}
				return s.IsRevoked(ctx, jti)
			},
		}
	}
	raw := memorystore.New()
	defer raw.Close()
	res, err := measure.Measure(t.Context(), "store", track('A', mem),
		append(tiny, measure.WithBaseline("raw", track('B', raw)), measure.WithParallelism(1))...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Baseline == nil || res.Baseline.Name != "raw" || res.Baseline.Revoked.Ops != 300 || res.Revoked.Ops != 300 {
		t.Fatalf("Baseline = %+v; want raw's own figures, 300 revoked lookups each", res.Baseline)
	}
	// Setup (A, B), then per lookup phase: warm-ups A B, turns A B B A A B B A.
	want := "AB" + "AB" + "ABABAB"
	if got := string(log); !strings.HasPrefix(got, want) {
		t.Errorf("turns %s..., want %s...", got[:min(len(got), len(want))], want)
	}
}

func TestTimeGroupsFastOperations(t *testing.T) {
	next := 0
	op := func(_ context.Context, i int) error {
		if i != next {
			return fmt.Errorf("operation number %d, want %d", i, next)
		}
		next++
		return nil
	}
	lat, err := measure.Time(t.Context(), op, measure.WithOps(5000), measure.WithWarmup(500), measure.WithMinDuration(0))
	if err != nil {
		t.Fatal(err)
	}
	if lat.Group < 2 || lat.Ops != 5000 {
		t.Errorf("Group, Ops = %d, %d; want a group of several fast operations and all 5000 timed", lat.Group, lat.Ops)
	}
	if next != lat.Warmup+lat.Ops || lat.Warmup < 500 {
		t.Errorf("%d operations ran, Warmup %d + Ops %d", next, lat.Warmup, lat.Ops)
	}
}

func TestParallelNumbersNeverRepeat(t *testing.T) {
	var seen [5000]atomic.Bool
	op := func(_ context.Context, i int) error {
		if i >= len(seen) || seen[i].Swap(true) {
			return errors.New("operation number repeated or out of range")
		}
		return nil
	}
	tp, err := measure.Parallel(t.Context(), op, measure.WithOps(1000), measure.WithWarmup(100),
		measure.WithParallelism(4), measure.WithMinDuration(0))
	if err != nil {
		t.Fatal(err)
	}
	// Goroutines take numbers 64 at a time, so a few more than asked run.
	if tp.Ops < 4000 || tp.Ops > 4000+4*64 || tp.Goroutines != 4 {
		t.Errorf("Ops, Goroutines = %d, %d; want about 4000, 4", tp.Ops, tp.Goroutines)
	}

	failAt := func(_ context.Context, i int) error {
		if i == 500 {
			return errDown
		}
		return nil
	}
	if _, err := measure.Parallel(t.Context(), failAt, measure.WithOps(1000), measure.WithWarmup(0)); !errors.Is(err, errDown) {
		t.Errorf("Parallel = %v, want the op's error", err)
	}
}

// BenchmarkRun runs the suite on memorystore, as a third party would on
// its own Store.
func BenchmarkRun(b *testing.B) {
	measure.Run(b, func(b *testing.B) blocklist.Store {
		s := memorystore.New()
		b.Cleanup(func() { s.Close() })
		return s
	})
}
