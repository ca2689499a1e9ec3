// Package conformance is the test suite every blocklist.Store runs to prove
// it keeps the contract written in package blocklist: exact ids, expiry on
// time, far-future exps saturated rather than wrapped, monotonic
// revocation, context handling, errors instead of a silent "not revoked",
// and safety under concurrent use.
//
// Every backend of this module runs it, and so can a third party's, from its
// own module, with one test function:
//
//	package mystore_test
//
//	import (
//		"testing"
//
//		"github.com/jwtblocklist/blocklist"
//		"github.com/jwtblocklist/blocklist/conformance"
//		"example.com/mystore"
//	)
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) blocklist.Store {
//			s := mystore.New(/* a fresh namespace per call */)
//			t.Cleanup(func() { s.Close() })
//			return s
//		}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
//			return mystore.New(/* pointed at a server that is down */)
//		}))
//	}
//
// The suite runs its subtests in parallel and waits in real time for entries
// to expire, so it takes a few seconds whatever the backend. It imports only
// the standard library and this module.
//
// RunBenchmarks runs, as Go benchmarks, the workload every backend of this
// module is measured with, so a third party's Store gets figures that can
// be set beside ours.
package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// Option configures Run.
type Option func(*config)

type config struct {
	newUnavailable func(t *testing.T) blocklist.Store
	newPeer        func(t *testing.T, s blocklist.Store) blocklist.Store // WithPeer: watch.go
}

// WithUnavailable gives Run a factory for a store whose backend cannot
// answer: its server stopped, or its address refusing connections. Run then
// checks that every method returns an error, within the context's deadline,
// and never a silent "not revoked". Backends with no server to lose (an
// in-process map) may leave it out.
func WithUnavailable(newStore func(t *testing.T) blocklist.Store) Option {
	return func(c *config) { c.newUnavailable = newStore }
}

// Run runs the conformance suite, one parallel subtest per behaviour.
//
// newStore is called once per subtest and must return a store that holds no
// revocations and shares none with the stores of other calls (on a shared
// server, give each call its own key prefix). It registers any cleanup with
// t.Cleanup. If the store implements blocklist.ExpiryStore, RevokedUntil is
// checked too, and so are RevokedUntilEach and RevokeOnce for a
// blocklist.BatchStore and a blocklist.OnceStore, Watch for a
// blocklist.WatchStore and ScanRevoked for a blocklist.ScanStore. A store
// that is an io.Closer is closed by one subtest, which checks that it then refuses
// calls with blocklist.ErrClosed or answers them right, and never panics;
// the factory's cleanup may close it again.
func Run(t *testing.T, newStore func(t *testing.T) blocklist.Store, opts ...Option) {
	t.Helper()
	var cfg config
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s blocklist.Store)
	}{
		{"InvalidID", testInvalidID},
		{"OddIDs", testOddIDs},
		{"DistinctIDs", testDistinctIDs},
		{"PastExpiry", testPastExpiry},
		{"Expiry", testExpiry},
		{"LongExpiry", testLongExpiry},
		{"FarFuture", testFarFuture}, // farfuture.go
		{"Monotonic", testMonotonic},
		{"ConcurrentMonotonic", testConcurrentMonotonic},
		{"DoneContext", testDoneContext},
		{"Concurrent", testConcurrent},
		{"Batch", testBatch}, {"RevokeOnce", testRevokeOnce}, // optional capabilities: batch.go
		{"Closed", testClosed}, // stores with a Close method: closed.go
		{"Watch", func(t *testing.T, s blocklist.Store) { testWatch(t, s, cfg) }}, // blocklist.WatchStore: watch.go
		{"Scan", testScan}, // blocklist.ScanStore: scan.go
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
	t.Run("Unavailable", func(t *testing.T) {
		if cfg.newUnavailable == nil {
			t.Skip("no WithUnavailable factory given")
		}
		t.Parallel()
		testUnavailable(t, cfg.newUnavailable(t))
	})
}

// slack is how late a check may run after the one second the contract
// allows, to absorb scheduling on a loaded machine.
const slack = 300 * time.Millisecond

// waitUntil sleeps until t.
func waitUntil(deadline time.Time) { time.Sleep(time.Until(deadline)) }

func revoke(t *testing.T, s blocklist.Store, jti string, exp time.Time) {
	t.Helper()
	if err := s.Revoke(context.Background(), jti, exp); err != nil {
		t.Fatalf("Revoke(%s, %s): %v", quote(jti), exp.Format(time.RFC3339Nano), err)
	}
}

func isRevoked(t *testing.T, s blocklist.Store, jti string) bool {
	t.Helper()
	ok, err := s.IsRevoked(context.Background(), jti)
	if err != nil {
		t.Fatalf("IsRevoked(%s): %v", quote(jti), err)
	}
	return ok
}

func wantRevoked(t *testing.T, s blocklist.Store, jti string, want bool, why string) {
	t.Helper()
	if got := isRevoked(t, s, jti); got != want {
		t.Errorf("IsRevoked(%s) = %v, want %v: %s", quote(jti), got, want, why)
	}
}

// wantUntil checks RevokedUntil when the store implements it: want is the
// exp the revocation must end at, or the zero Time for "not revoked".
func wantUntil(t *testing.T, s blocklist.Store, jti string, want time.Time) {
	t.Helper()
	if got, ok := revokedUntil(t, s, jti); ok {
		checkUntil(t, jti, got, want)
	}
}

// revokedUntil returns RevokedUntil of jti, and false when the store does
// not implement it.
func revokedUntil(t *testing.T, s blocklist.Store, jti string) (time.Time, bool) {
	t.Helper()
	es, ok := s.(blocklist.ExpiryStore)
	if !ok {
		return time.Time{}, false
	}
	got, err := es.RevokedUntil(context.Background(), jti)
	if err != nil {
		t.Fatalf("RevokedUntil(%s): %v", quote(jti), err)
	}
	return got, true
}

// checkUntil checks got, a RevokedUntil answer for jti, against want as
// wantUntil does.
func checkUntil(t *testing.T, jti string, got, want time.Time) {
	t.Helper()
	switch {
	case want.IsZero() && !got.IsZero():
		t.Errorf("RevokedUntil(%s) = %s, want the zero Time (not revoked)", quote(jti), got)
	case !want.IsZero() && (got.Before(want.Truncate(time.Millisecond)) || got.After(want.Add(time.Second))):
		t.Errorf("RevokedUntil(%s) = %s, want %s (to the millisecond, at most 1s later)",
			quote(jti), got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

// quote shortens long ids in failure messages.
func quote(jti string) string {
	if len(jti) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", jti[:32], len(jti))
	}
	return fmt.Sprintf("%q", jti)
}

func testInvalidID(t *testing.T, s blocklist.Store) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, jti := range []string{"", strings.Repeat("x", blocklist.MaxIDLen+1), strings.Repeat("\x00", 5000)} {
		if err := s.Revoke(ctx, jti, exp); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("Revoke(%s) error = %v, want ErrInvalidID", quote(jti), err)
		}
		if _, err := s.IsRevoked(ctx, jti); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("IsRevoked(%s) error = %v, want ErrInvalidID", quote(jti), err)
		}
		if es, ok := s.(blocklist.ExpiryStore); ok {
			if _, err := es.RevokedUntil(ctx, jti); !errors.Is(err, blocklist.ErrInvalidID) {
				t.Errorf("RevokedUntil(%s) error = %v, want ErrInvalidID", quote(jti), err)
			}
		}
	}
	// The longest valid id is accepted and its one-byte-shorter prefix is
	// a different id.
	longest := strings.Repeat("m", blocklist.MaxIDLen)
	revoke(t, s, longest, exp)
	wantRevoked(t, s, longest, true, "an id of exactly MaxIDLen bytes is valid")
	wantRevoked(t, s, longest[:blocklist.MaxIDLen-1], false, "it is a different id")
}

// oddIDs are valid ids that break naive key schemes: separators, wildcards,
// escapes, control bytes, invalid UTF-8, Redis Cluster hash tags, memcached's
// 250-byte key limit.
func oddIDs() []string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []string{
		"a", " ", "  ", "\x00", "\x00\x00", "a\x00b", "\n", "a\nb", "\r\n", "\t", "\x7f",
		"a b", "a+b", "a%20b", "%", "%%", "%s", "*", "?", "[a-z]", "{}", "{a}b", "{", "}",
		"\\", "\"'`", "key:with:colons", "blocklist:", "blocklist:x", "../../etc/passwd",
		"日本語", "café", "\xff", "\xfe\xff", "\xc3\x28", "\xed\xa0\x80",
		"VERSION\r\nflush_all", "get x\r\n", "=", "AAAA====",
		strings.Repeat("é", 300),
		strings.Repeat("a", 249), strings.Repeat("a", 250), strings.Repeat("a", 251),
		string(all), string(all) + string(all) + string(all) + string(all), // 1024 bytes
	}
}

func testOddIDs(t *testing.T, s blocklist.Store) {
	exp := time.Now().Add(time.Hour)
	ids := oddIDs()
	for _, jti := range ids {
		wantRevoked(t, s, jti, false, "never revoked")
	}
	for _, jti := range ids {
		revoke(t, s, jti, exp)
	}
	for _, jti := range ids {
		wantRevoked(t, s, jti, true, "revoked until an hour from now")
		wantUntil(t, s, jti, exp)
	}
}

func testDistinctIDs(t *testing.T, s blocklist.Store) {
	long := strings.Repeat("p", 300)
	max := strings.Repeat("q", blocklist.MaxIDLen-1)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	b64url := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	revoked := []string{
		"Token", "a b", "with\x00nul", "café", "\xff", "{tag}id", "x" + long + "1", max + "A",
		strings.Repeat("z", 250) + "tail-one", "a:b",
	}
	nearMisses := []string{
		"token", "TOKEN", "Token ", " Token", "Token\x00", "Token\n", "Toke", "Tokenn",
		"a  b", "a_b", "a%20b", "a+b", "a\tb", "a\x00b", "ab", "a", "b",
		"with", "with\x00nul\x00", "with\x00NUL", "withnul", "with_nul", "with nul", "with?nul",
		"cafe\u0301", "cafe", "CAFÉ", "caf\xc3", "\ufffd", "\xfe", "\xef\xbf\xbd", "\xff\x00",
		"id", "tag}id", "{tag}", "{tag}ID", "{other}id",
		"x" + long + "2", "x" + long, "x" + long + "1 ", long + "1",
		max + "B", max, max[1:] + "A",
		strings.Repeat("z", 250) + "tail-two", strings.Repeat("z", 250), strings.Repeat("z", 251),
		"a_b", "a-b", "a.b", "a/b", "a%3Ab", "a:", ":b", "ab",
		hex.EncodeToString([]byte("Token")), b64("Token"), b64url("Token"),
		sum("x" + long + "1"), sum(max + "A"), b64(max + "A")[:100], sum("Token"),
		b64url("with\x00nul"), hex.EncodeToString([]byte("with\x00nul")),
	}
	exp := time.Now().Add(time.Hour)
	for _, jti := range revoked {
		revoke(t, s, jti, exp)
	}
	for _, jti := range revoked {
		wantRevoked(t, s, jti, true, "revoked until an hour from now")
	}
	for _, jti := range nearMisses {
		wantRevoked(t, s, jti, false, "a near miss of a revoked id, never revoked itself")
		wantUntil(t, s, jti, time.Time{})
	}
}

func testPastExpiry(t *testing.T, s blocklist.Store) {
	now := time.Now()
	for name, exp := range map[string]time.Time{
		"past":      now.Add(-time.Second),
		"long-past": now.Add(-90 * 24 * time.Hour),
		"zero":      {},
		"unix-zero": time.Unix(0, 0),
		"now":       now,
	} {
		jti := "past-" + name
		revoke(t, s, jti, exp)
		wantRevoked(t, s, jti, false, "exp "+name+" is not in the future: nothing is stored")
		wantUntil(t, s, jti, time.Time{})
	}
	// A past exp never shortens a live revocation.
	live := now.Add(time.Hour)
	revoke(t, s, "live", live)
	revoke(t, s, "live", now.Add(-time.Minute))
	wantRevoked(t, s, "live", true, "a past exp must not undo a live revocation")
	wantUntil(t, s, "live", live)
}

func testExpiry(t *testing.T, s blocklist.Store) {
	start := time.Now()
	exps := map[string]time.Time{
		"sub-second": start.Add(400 * time.Millisecond),
		"one-second": start.Add(1200 * time.Millisecond),
	}
	for jti, exp := range exps {
		revoke(t, s, jti, exp)
	}
	// Each answer is judged by when it came: one that came before the exp
	// (with a margin for rounding) must say revoked.
	for jti, exp := range exps {
		ok := isRevoked(t, s, jti)
		if time.Now().Before(exp.Add(-50*time.Millisecond)) && !ok {
			t.Errorf("IsRevoked(%q) = false before its exp", jti)
		}
		if until, has := revokedUntil(t, s, jti); has && time.Now().Before(exp.Add(-50*time.Millisecond)) {
			checkUntil(t, jti, until, exp)
		}
	}
	last := exps["one-second"]
	waitUntil(last.Add(time.Second + slack))
	for jti := range exps {
		wantRevoked(t, s, jti, false, "its exp passed more than a second ago")
		wantUntil(t, s, jti, time.Time{})
	}
}

func testLongExpiry(t *testing.T, s blocklist.Store) {
	now := time.Now()
	exps := map[string]time.Time{
		"29-days":   now.Add(29 * 24 * time.Hour),
		"30-days":   now.Add(30 * 24 * time.Hour),
		"31-days":   now.Add(31 * 24 * time.Hour),
		"90-days":   now.Add(90 * 24 * time.Hour),
		"1-year":    now.AddDate(1, 0, 0),
		"year-2038": time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), // one second past int32 time
		"year-2039": time.Date(2039, 6, 1, 0, 0, 0, 0, time.UTC),
		"year-2100": time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		"year-9999": time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for jti, exp := range exps {
		revoke(t, s, jti, exp)
	}
	for jti, exp := range exps {
		wantRevoked(t, s, jti, true, "exp is far in the future")
		if jti != "year-9999" { // beyond what some clocks represent; revoked is enough
			wantUntil(t, s, jti, exp)
		}
	}
}

func testMonotonic(t *testing.T, s blocklist.Store) {
	now := time.Now()
	short, long := now.Add(400*time.Millisecond), now.Add(time.Hour)

	revoke(t, s, "long-then-short", long)
	revoke(t, s, "long-then-short", short)
	revoke(t, s, "short-then-long", short)
	revoke(t, s, "short-then-long", long)
	revoke(t, s, "twice", long)
	revoke(t, s, "twice", long)
	for _, jti := range []string{"long-then-short", "short-then-long", "twice"} {
		wantUntil(t, s, jti, long)
	}
	// Long revocations of several ids, then a short one of each, each
	// checked at once: a store that reports the exp it was last given (a
	// cache that has forgotten the long one) ends them early.
	for i := range 3 {
		revoke(t, s, fmt.Sprintf("long-%d", i), long)
	}
	for i := range 3 {
		jti := fmt.Sprintf("long-%d", i)
		revoke(t, s, jti, short)
		wantUntil(t, s, jti, long)
	}
	waitUntil(short.Add(time.Second + slack))
	wantRevoked(t, s, "long-then-short", true, "a shorter exp must not shorten a revocation")
	wantRevoked(t, s, "short-then-long", true, "a later exp extends a revocation")
	wantRevoked(t, s, "twice", true, "revoking twice is not an error")
}

// testConcurrentMonotonic races one long revocation against many short ones
// of the same id: a read-modify-write without atomicity loses the long one.
func testConcurrentMonotonic(t *testing.T, s blocklist.Store) {
	const rounds, racers = 5, 24
	long := time.Now().Add(time.Hour)
	var short time.Time
	for r := range rounds {
		// Each round's short exps are fresh: a slow round on a loaded
		// machine must not see them pass, which would let a racy store
		// keep the long one by storing nothing.
		short = time.Now().Add(400 * time.Millisecond)
		jti := fmt.Sprintf("raced-%d", r)
		start := make(chan struct{})
		errs := make(chan error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			exp := short.Add(time.Duration(i) * time.Millisecond)
			if i == racers/2 {
				exp = long
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs <- s.Revoke(context.Background(), jti, exp)
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Revoke(%q): %v", jti, err)
			}
		}
		wantUntil(t, s, jti, long)
	}
	waitUntil(short.Add(racers*time.Millisecond + time.Second + slack))
	for r := range rounds {
		wantRevoked(t, s, fmt.Sprintf("raced-%d", r), true,
			"the longest of concurrent revocations must win")
	}
}

func testDoneContext(t *testing.T, s blocklist.Store) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	exp := time.Now().Add(time.Hour)
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		jti := "done-" + c.want.Error()
		if err := s.Revoke(c.ctx, jti, exp); !errors.Is(err, c.want) {
			t.Errorf("Revoke with a done context: error = %v, want %v", err, c.want)
		}
		if _, err := s.IsRevoked(c.ctx, jti); !errors.Is(err, c.want) {
			t.Errorf("IsRevoked with a done context: error = %v, want %v", err, c.want)
		}
		if es, ok := s.(blocklist.ExpiryStore); ok {
			if _, err := es.RevokedUntil(c.ctx, jti); !errors.Is(err, c.want) {
				t.Errorf("RevokedUntil with a done context: error = %v, want %v", err, c.want)
			}
		}
		wantRevoked(t, s, jti, false, "Revoke with a done context must do no work")
	}
}

func testConcurrent(t *testing.T, s blocklist.Store) {
	const workers, perWorker = 8, 40
	exp := time.Now().Add(time.Hour)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				jti := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Revoke(ctx, jti, exp); err != nil {
					errs <- fmt.Errorf("Revoke(%q): %w", jti, err)
					return
				}
				if ok, err := s.IsRevoked(ctx, jti); err != nil || !ok {
					errs <- fmt.Errorf("IsRevoked(%q) right after Revoke = %v, %v; want true, nil", jti, ok, err)
					return
				}
				other := fmt.Sprintf("never-%d-%d", w, i)
				if ok, err := s.IsRevoked(ctx, other); err != nil || ok {
					errs <- fmt.Errorf("IsRevoked(%q) = %v, %v; want false, nil", other, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		for i := range perWorker {
			wantRevoked(t, s, fmt.Sprintf("w%d-%d", w, i), true, "revoked by a concurrent worker")
		}
	}
}

func testUnavailable(t *testing.T, s blocklist.Store) {
	const deadline = 2 * time.Second
	exp := time.Now().Add(time.Hour)
	callUnavailable(t, deadline, "Revoke", func(ctx context.Context) (bool, error) { return false, s.Revoke(ctx, "down", exp) })
	callUnavailable(t, deadline, "IsRevoked", func(ctx context.Context) (bool, error) { return s.IsRevoked(ctx, "down") })
	testCapabilitiesUnavailable(t, s, deadline)
	testWatchUnavailable(t, s, deadline)
	testScanUnavailable(t, s, deadline)
	if es, ok := s.(blocklist.ExpiryStore); ok {
		callUnavailable(t, deadline, "RevokedUntil", func(ctx context.Context) (bool, error) {
			until, err := es.RevokedUntil(ctx, "down")
			return !until.IsZero(), err
		})
	}
}

// callUnavailable calls f, one method of a store whose backend is down,
// under a context with the deadline, and checks that it fails in time with
// an error other than ErrInvalidID. ok is what the method reported (revoked,
// or first for RevokeOnce): (false, nil) is the silent "not revoked" the
// contract forbids.
func callUnavailable(t *testing.T, deadline time.Duration, name string, f func(ctx context.Context) (ok bool, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	ok, err := f(ctx)
	took := time.Since(start)
	switch {
	case err == nil && !ok:
		t.Errorf("%s on an unavailable backend = (false, nil): a silent \"not revoked\" lets a logged-out token back in", name)
	case err == nil:
		t.Errorf("%s on an unavailable backend returned no error", name)
	case errors.Is(err, blocklist.ErrInvalidID):
		t.Errorf("%s on an unavailable backend: error %v wraps ErrInvalidID", name, err)
	}
	if took > deadline+time.Second {
		t.Errorf("%s took %s on an unavailable backend, past the context deadline of %s", name, took, deadline)
	}
}
