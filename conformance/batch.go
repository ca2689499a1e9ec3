package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// The checks of the optional capabilities, blocklist.BatchStore and
// blocklist.OnceStore. A store that lacks one skips its subtest; a store
// whose method answers errors.ErrUnsupported (a wrapper over a Store that
// lacks it) skips it too.

// testBatch checks that RevokedUntilEach answers what RevokedUntil answers,
// for many ids at once, and keeps the rules on ids and contexts.
func testBatch(t *testing.T, s blocklist.Store) {
	bs, ok := s.(blocklist.BatchStore)
	if !ok {
		t.Skip("not a blocklist.BatchStore")
	}
	ctx := context.Background()
	now := time.Now()
	hour, short := now.Add(time.Hour), now.Add(300*time.Millisecond)

	revoked := oddIDs()
	for _, jti := range revoked {
		revoke(t, s, jti, hour)
	}
	revoke(t, s, "short", short)
	revoke(t, s, "year-2100", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	revoke(t, s, "past", now.Add(-time.Second))

	// Every revoked id, each followed by a near miss never revoked, then
	// repeats, in one call.
	var jtis []string
	want := map[string]time.Time{}
	for i, jti := range revoked {
		miss := "miss-" + fmt.Sprint(i) + "-" + jti
		if len(miss) > blocklist.MaxIDLen {
			miss = miss[:blocklist.MaxIDLen]
		}
		jtis = append(jtis, jti, miss)
		want[jti], want[miss] = hour, time.Time{}
	}
	jtis = append(jtis, "short", "year-2100", "past", "never", revoked[0], "never", "short")
	want["short"], want["year-2100"], want["past"], want["never"] =
		short, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, time.Time{}

	check := func(when string) {
		t.Helper()
		until := make([]time.Time, len(jtis))
		for i := range until {
			until[i] = time.Unix(1, 0) // must be overwritten, zero or not
		}
		// "short" is judged by when the batch ran, not by when its answer
		// is checked: the RevokedUntil calls below take time.
		began := time.Now()
		if err := bs.RevokedUntilEach(ctx, jtis, until); err != nil {
			t.Fatalf("RevokedUntilEach of %d ids %s: %v", len(jtis), when, err)
		}
		answered := time.Now()
		for i, jti := range jtis {
			w := want[jti]
			if jti == "short" && !began.Before(short.Add(time.Second+slack)) {
				w = time.Time{}
			} else if jti == "short" && !answered.Before(short.Add(-50*time.Millisecond)) {
				continue // the batch ran at its end: either answer is right
			}
			got := until[i]
			switch {
			case w.IsZero() && !got.IsZero():
				t.Errorf("%s: until[%d] for %s = %s, want the zero Time (not revoked)", when, i, quote(jti), got)
			case !w.IsZero() && (got.Before(w.Truncate(time.Millisecond)) || got.After(w.Add(time.Second))):
				t.Errorf("%s: until[%d] for %s = %s, want %s (to the millisecond, at most 1s later)",
					when, i, quote(jti), got.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano))
			}
			// The same answer as RevokedUntil, made just after.
			if one, err := bs.RevokedUntil(ctx, jti); err != nil {
				t.Fatalf("RevokedUntil(%s): %v", quote(jti), err)
			} else if one.IsZero() != got.IsZero() && jti != "short" {
				t.Errorf("%s: RevokedUntilEach says %s for %s, RevokedUntil says %s", when, got, quote(jti), one)
			}
		}
	}
	check("while revoked")

	// No ids is not an error.
	if err := bs.RevokedUntilEach(ctx, nil, nil); err != nil {
		t.Errorf("RevokedUntilEach of no ids: %v", err)
	}
	// Lengths that differ, and invalid ids anywhere, fail before any work.
	if err := bs.RevokedUntilEach(ctx, []string{"a", "b"}, make([]time.Time, 1)); err == nil {
		t.Error("RevokedUntilEach with 2 ids and 1 answer: no error")
	}
	for _, bad := range []string{"", strings.Repeat("x", blocklist.MaxIDLen+1)} {
		until := make([]time.Time, 3)
		if err := bs.RevokedUntilEach(ctx, []string{revoked[0], bad, "never"}, until); !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("RevokedUntilEach with the id %s among valid ones: error = %v, want ErrInvalidID", quote(bad), err)
		}
	}
	// A done context fails before any work.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := bs.RevokedUntilEach(canceled, []string{"a"}, make([]time.Time, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("RevokedUntilEach with a canceled context: error = %v, want context.Canceled", err)
	}
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	if err := bs.RevokedUntilEach(expired, []string{"a"}, make([]time.Time, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RevokedUntilEach with an expired context: error = %v, want context.DeadlineExceeded", err)
	}

	waitUntil(short.Add(time.Second + slack))
	check("after the short revocation ended")
}

// revokeOnce calls RevokeOnce, skipping the test when the store answers
// errors.ErrUnsupported.
func revokeOnce(t *testing.T, s blocklist.OnceStore, jti string, exp time.Time) bool {
	t.Helper()
	first, err := s.RevokeOnce(context.Background(), jti, exp)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("RevokeOnce: %v", err)
	}
	if err != nil {
		t.Fatalf("RevokeOnce(%s, %s): %v", quote(jti), exp.Format(time.RFC3339Nano), err)
	}
	return first
}

// testRevokeOnce checks that RevokeOnce revokes an id that is not revoked,
// reports it, and that of racing callers exactly one wins.
func testRevokeOnce(t *testing.T, s blocklist.Store) {
	os, ok := s.(blocklist.OnceStore)
	if !ok {
		t.Skip("not a blocklist.OnceStore")
	}
	ctx := context.Background()
	now := time.Now()
	hour, later := now.Add(time.Hour), now.Add(2*time.Hour)

	if !revokeOnce(t, os, "once", hour) {
		t.Fatal("RevokeOnce of an id never revoked = false, want true")
	}
	wantRevoked(t, s, "once", true, "revoked by RevokeOnce")
	wantUntil(t, s, "once", hour)
	if revokeOnce(t, os, "once", later) {
		t.Error("RevokeOnce of a revoked id = true, want false")
	}
	wantUntil(t, s, "once", hour) // unchanged, not extended

	// An id revoked by Revoke is revoked for RevokeOnce too.
	revoke(t, s, "by-revoke", hour)
	if revokeOnce(t, os, "by-revoke", hour) {
		t.Error("RevokeOnce of an id revoked by Revoke = true, want false")
	}

	// Past exps store nothing and win nothing.
	for _, exp := range []time.Time{now.Add(-time.Second), {}, now} {
		if revokeOnce(t, os, "past", exp) {
			t.Errorf("RevokeOnce with exp %s not in the future = true, want false", exp)
		}
	}
	wantRevoked(t, s, "past", false, "RevokeOnce with a past exp stores nothing")
	if revokeOnce(t, os, "once", now.Add(-time.Second)) {
		t.Error("RevokeOnce with a past exp of a revoked id = true")
	}
	wantUntil(t, s, "once", hour)

	// Odd ids are never confused: each is won once.
	for _, jti := range oddIDs() {
		if !revokeOnce(t, os, jti, hour) {
			t.Errorf("RevokeOnce(%s) = false on first use: confused with another id", quote(jti))
		}
	}
	for _, jti := range oddIDs() {
		if revokeOnce(t, os, jti, hour) {
			t.Errorf("RevokeOnce(%s) = true on second use", quote(jti))
		}
	}

	// Invalid ids and done contexts.
	for _, bad := range []string{"", strings.Repeat("x", blocklist.MaxIDLen+1)} {
		if first, err := os.RevokeOnce(ctx, bad, hour); first || !errors.Is(err, blocklist.ErrInvalidID) {
			t.Errorf("RevokeOnce(%s) = %v, %v; want false and ErrInvalidID", quote(bad), first, err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if first, err := os.RevokeOnce(canceled, "done", hour); first || !errors.Is(err, context.Canceled) {
		t.Errorf("RevokeOnce with a canceled context = %v, %v; want false and context.Canceled", first, err)
	}
	wantRevoked(t, s, "done", false, "RevokeOnce with a done context must do no work")

	// Races: of many callers, in several rounds, exactly one wins each.
	const rounds, racers = 5, 32
	for r := range rounds {
		jti := fmt.Sprintf("raced-once-%d", r)
		var wins atomic.Int32
		start := make(chan struct{})
		errs := make(chan error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			exp := hour.Add(time.Duration(i) * time.Millisecond)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				first, err := os.RevokeOnce(ctx, jti, exp)
				if err != nil {
					errs <- err
					return
				}
				if first {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent RevokeOnce(%q): %v", jti, err)
		}
		if n := wins.Load(); n != 1 {
			t.Errorf("round %d: %d of %d concurrent RevokeOnce calls won, want exactly 1", r, n, racers)
		}
	}

	// Once a revocation has ended, the id can be won again. A call that
	// returns after its exp may have reached the store too late to store
	// anything (a loaded machine): try again with a fresh exp.
	var short time.Time
	for attempt := 1; ; attempt++ {
		short = time.Now().Add(300 * time.Millisecond)
		if revokeOnce(t, os, "ends", short) {
			break
		}
		if time.Now().Before(short) || attempt == 5 {
			t.Fatal("RevokeOnce(\"ends\") = false on first use")
		}
	}
	waitUntil(short.Add(time.Second + slack))
	wantRevoked(t, s, "ends", false, "its exp passed more than a second ago")
	if !revokeOnce(t, os, "ends", hour) {
		t.Error("RevokeOnce of an id whose revocation ended = false, want true")
	}
	wantUntil(t, s, "ends", hour)
}

// testCapabilitiesUnavailable extends testUnavailable to the optional
// methods.
func testCapabilitiesUnavailable(t *testing.T, s blocklist.Store, deadline time.Duration) {
	t.Helper()
	exp := time.Now().Add(time.Hour)
	if bs, ok := s.(blocklist.BatchStore); ok {
		callUnavailable(t, deadline, "RevokedUntilEach", func(ctx context.Context) (bool, error) {
			return false, bs.RevokedUntilEach(ctx, []string{"down", "down-2"}, make([]time.Time, 2))
		})
	}
	if os, ok := s.(blocklist.OnceStore); ok {
		callUnavailable(t, deadline, "RevokeOnce", func(ctx context.Context) (bool, error) {
			first, err := os.RevokeOnce(ctx, "down-once", exp)
			if first && err != nil {
				t.Errorf("RevokeOnce on an unavailable backend = true, %v: an error must come with false", err)
			}
			return first, err
		})
	}
}
