package conformance_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// The reference: a correct store passes every subtest.
func TestMemoryStorePasses(t *testing.T) {
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s := memorystore.New()
		t.Cleanup(func() { s.Close() })
		return s
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		return down{}
	}))
}

// A correct store whose single lookups are slow, as a loaded backend's
// are, passes too: the suite judges each answer by when it was given, not
// by when it gets to check it. (The Batch check once judged a batch's
// answer for an id revoked for 300 ms by the time after a hundred
// RevokedUntil calls, and so wanted "not revoked" from a batch that had
// answered while the id was revoked.)
func TestSlowStorePasses(t *testing.T) {
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s := memorystore.New()
		t.Cleanup(func() { s.Close() })
		return slowUntil{s}
	})
}

// slowUntil is a correct store whose RevokedUntil takes 20 ms.
type slowUntil struct{ *memorystore.Store }

func (s slowUntil) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	time.Sleep(20 * time.Millisecond)
	return s.Store.RevokedUntil(ctx, jti)
}

// brokenEnv names the flaw TestBrokenStore runs the suite against.
const brokenEnv = "CONFORMANCE_BROKEN_STORE"

// TestSuiteCatchesBrokenStores proves the suite is honest: for each clause of
// the contract, a store that breaks only that clause fails the subtest that
// checks it. Each broken store runs in a child process, since a failing
// suite fails the test that runs it.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	flaws := map[string]string{
		"accepts-empty-id":      "InvalidID",
		"lowercases-ids":        "DistinctIDs",
		"truncates-ids-at-250":  "DistinctIDs",
		"mangles-control-bytes": "DistinctIDs",
		"keeps-past-exp":        "PastExpiry",
		"ignores-exp":           "Expiry",
		"rounds-down-to-second": "Expiry",
		"forgets-after-30-days": "LongExpiry",
		"wraps-milliseconds":    "FarFuture",
		"refuses-far-future":    "FarFuture",
		"overwrites-exp":        "Monotonic",
		"read-modify-write":     "ConcurrentMonotonic",
		"ignores-context":       "DoneContext",
		"swallows-errors":       "Unavailable",
		"once-swallows-errors":  "Unavailable",
		"reports-until-early":   "OddIDs",
		"forgets-when-closed":   "Closed",
		"scan-misses-an-entry":  "Scan",
		"scan-swallows-errors":  "Unavailable",
		"reorders-one-id":       "Watch",
	}
	// The children mostly sleep, waiting for entries to expire: start them
	// all at once rather than GOMAXPROCS at a time as parallel subtests.
	type result struct {
		out []byte
		err error
	}
	results := make(map[string]chan result, len(flaws))
	for flaw := range flaws {
		ch := make(chan result, 1)
		results[flaw] = ch
		go func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.v", "-test.count=1", "-test.parallel=16")
			cmd.Env = append(os.Environ(), brokenEnv+"="+flaw)
			out, err := cmd.CombinedOutput()
			ch <- result{out, err}
		}()
	}
	for flaw, subtest := range flaws {
		t.Run(flaw, func(t *testing.T) {
			r := <-results[flaw]
			if r.err == nil {
				t.Fatalf("the suite passed a store that %s:\n%s", flaw, r.out)
			}
			if want := "--- FAIL: TestBrokenStore/" + subtest + " "; !strings.Contains(string(r.out), want) {
				t.Fatalf("a store that %s did not fail subtest %s:\n%s", flaw, subtest, r.out)
			}
		})
	}
}

// TestBrokenStore runs the suite against the store named by brokenEnv. It is
// expected to fail; TestSuiteCatchesBrokenStores runs it.
func TestBrokenStore(t *testing.T) {
	flaw := os.Getenv(brokenEnv)
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s := memorystore.New()
		t.Cleanup(func() { s.Close() })
		switch flaw {
		case "reports-until-early":
			return earlyUntil{s}
		case "forgets-when-closed":
			return &forgetsWhenClosed{Store: s}
		case "scan-misses-an-entry":
			return scanMisses{s}
		case "reorders-one-id":
			return reordersOneID{s}
		}
		return &broken{Store: s, flaw: flaw}
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		return down{silent: flaw == "swallows-errors", silentOnce: flaw == "once-swallows-errors",
			silentScan: flaw == "scan-swallows-errors"}
	}))
}

// broken is a memorystore with one flaw. It deliberately exposes only
// blocklist.Store, so the suite's checks that need no RevokedUntil are the
// ones proven here.
type broken struct {
	blocklist.Store // an interface, so RevokedUntil is not promoted
	flaw            string
	mu              sync.Mutex           // guards last
	last            map[string]time.Time // exps kept by the overwriting flaws
}

var errDown = errors.New("broken: server down")

func (b *broken) key(jti string) string {
	switch b.flaw {
	case "lowercases-ids":
		return strings.ToLower(jti)
	case "truncates-ids-at-250":
		return jti[:min(len(jti), 250)]
	case "mangles-control-bytes":
		return strings.Map(func(r rune) rune {
			if r < 0x20 {
				return '_'
			}
			return r
		}, jti)
	}
	return jti
}

func (b *broken) Revoke(ctx context.Context, jti string, exp time.Time) error {
	now := time.Now()
	switch b.flaw {
	case "accepts-empty-id":
		if jti == "" {
			return nil
		}
	case "keeps-past-exp":
		if !exp.After(now) {
			exp = now.Add(time.Hour)
		}
	case "ignores-exp":
		exp = now.Add(24 * time.Hour)
	case "rounds-down-to-second":
		if exp.Sub(now) < time.Second {
			return nil // a TTL of zero whole seconds: stored as already expired
		}
	case "forgets-after-30-days":
		if exp.Sub(now) > 30*24*time.Hour {
			return nil // read as an absolute time in 1970: expired at once
		}
	case "wraps-milliseconds":
		// int64 milliseconds, unchecked, as a Redis client would send
		// them: beyond the year 292,278,994 they wrap to the past (or to
		// 1970 at 2^64), and the revocation is stored already expired.
		exp = time.UnixMilli(exp.UnixMilli())
	case "refuses-far-future":
		if exp.UnixMilli() < 0 {
			return errors.New("broken: invalid expire time") // as Redis answers a negative one
		}
	case "overwrites-exp", "read-modify-write":
		return b.overwrite(ctx, jti, exp)
	case "ignores-context":
		ctx = context.Background()
	}
	return b.Store.Revoke(ctx, b.key(jti), exp)
}

func (b *broken) IsRevoked(ctx context.Context, jti string) (bool, error) {
	switch b.flaw {
	case "accepts-empty-id":
		if jti == "" {
			return false, nil
		}
	case "ignores-context":
		ctx = context.Background()
	case "overwrites-exp", "read-modify-write":
		b.mu.Lock()
		defer b.mu.Unlock()
		if err := blocklist.ValidateID(jti); err != nil {
			return false, err
		}
		return time.Now().Before(b.last[jti]), ctx.Err()
	}
	return b.Store.IsRevoked(ctx, b.key(jti))
}

// overwrite replaces the exp instead of keeping the later one; with
// "read-modify-write" it does keep the later one, but reads and writes in
// two steps with a window between them, as a naive networked store would.
func (b *broken) overwrite(ctx context.Context, jti string, exp time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := blocklist.ValidateID(jti); err != nil {
		return err
	}
	if !exp.After(time.Now()) {
		return nil
	}
	b.mu.Lock()
	if b.last == nil {
		b.last = make(map[string]time.Time)
	}
	old := b.last[jti]
	b.mu.Unlock()
	if b.flaw == "read-modify-write" {
		if old.After(exp) {
			return nil
		}
		// The round trip between read and write, long enough that racers
		// released together all read before any writes, even on a loaded machine.
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	b.last[jti] = exp
	b.mu.Unlock()
	return nil
}

// down is a store whose server is gone: every call fails, or, when silent,
// answers "not revoked" as a store that swallows its errors would.
type down struct{ silent, silentOnce, silentScan bool }

func (d down) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if d.silent {
		return nil
	}
	return errDown
}

func (d down) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if d.silent {
		return false, nil
	}
	return false, errDown
}

// RevokeOnce fails like the other methods, or, with silentOnce alone,
// answers "someone else revoked it first" without having asked anyone.
func (d down) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if d.silent || d.silentOnce {
		return false, nil
	}
	return false, errDown
}

// ScanRevoked fails like the other methods, or, with silentScan, reports
// an empty blocklist.
func (d down) ScanRevoked(ctx context.Context, fn func(string, time.Time) error) error {
	if d.silent || d.silentScan {
		return nil
	}
	return errDown
}

// scanMisses is a correct store whose ScanRevoked leaves out one entry, as
// a scan that drops the last key of a page would.
type scanMisses struct{ *memorystore.Store }

func (s scanMisses) ScanRevoked(ctx context.Context, fn func(string, time.Time) error) error {
	first := true
	return s.Store.ScanRevoked(ctx, func(jti string, until time.Time) error {
		if first {
			first = false
			return nil
		}
		return fn(jti, until)
	})
}

// reordersOneID is a correct store whose Watch, after each revocation of an
// id it reported before, reports the previous one again: a watcher applying
// events in the order received ends with an older exp than the last
// revocation's.
type reordersOneID struct{ *memorystore.Store }

func (r reordersOneID) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	last := make(map[string]blocklist.Event)
	return r.Store.Watch(ctx, func(ev blocklist.Event) {
		fn(ev)
		if ev.Kind != blocklist.Revoked {
			return
		}
		if prev, ok := last[ev.JTI]; ok {
			fn(prev)
		}
		last[ev.JTI] = ev
	})
}

// earlyUntil is a correct store whose RevokedUntil reports an end two
// seconds before the real one.
type earlyUntil struct{ *memorystore.Store }

func (e earlyUntil) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	until, err := e.Store.RevokedUntil(ctx, jti)
	if until.IsZero() {
		return until, err
	}
	return until.Add(-2 * time.Second), err
}

// forgetsWhenClosed is a correct store until Close, after which it answers
// every lookup (false, nil), as a store that drops its data on Close and
// reports no error would.
type forgetsWhenClosed struct {
	blocklist.Store
	closed atomic.Bool
}

func (f *forgetsWhenClosed) Close() error {
	f.closed.Store(true)
	return nil
}

func (f *forgetsWhenClosed) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if f.closed.Load() {
		return false, nil
	}
	return f.Store.IsRevoked(ctx, jti)
}
