package conformance

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// The checks of blocklist.ScanStore. A store that is not one skips them.

// scanAll runs ScanRevoked to its end and returns what it reported, every
// report of each id, checking on the way that fn is never called
// concurrently and only with valid ids.
func scanAll(t *testing.T, s blocklist.ScanStore) map[string][]time.Time {
	t.Helper()
	got := make(map[string][]time.Time)
	var inFn atomic.Int32
	err := s.ScanRevoked(context.Background(), func(jti string, until time.Time) error {
		if inFn.Add(1) != 1 {
			t.Error("ScanRevoked called fn concurrently")
		}
		defer inFn.Add(-1)
		if err := blocklist.ValidateID(jti); err != nil {
			t.Errorf("ScanRevoked reported an invalid id %s: %v", quote(jti), err)
		}
		got[jti] = append(got[jti], until)
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("ScanRevoked: %v", err) // a wrapper over a store that cannot list
	}
	if err != nil {
		t.Fatalf("ScanRevoked: %v", err)
	}
	return got
}

// testScan checks that ScanRevoked reports every live revocation, with its
// end as RevokedUntil would report it, and none that ended before the call;
// that an error from fn stops it and is returned as is; and that a done
// context fails before fn is called.
func testScan(t *testing.T, s blocklist.Store) {
	ss, ok := s.(blocklist.ScanStore)
	if !ok {
		t.Skip("not a blocklist.ScanStore")
	}
	ctx := context.Background()
	if got := scanAll(t, ss); len(got) != 0 {
		t.Fatalf("ScanRevoked of an empty store reported %d ids", len(got))
	}

	now := time.Now()
	want := make(map[string]time.Time) // id -> the exp it must be reported with
	for _, jti := range oddIDs() {
		want[jti] = now.Add(time.Hour)
	}
	want["year-2100"] = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	want["extended"] = now.Add(2 * time.Hour)
	for jti, exp := range want {
		revoke(t, s, jti, exp)
	}
	revoke(t, s, "extended", now.Add(time.Hour)) // shorter: changes nothing
	revoke(t, s, "past", now.Add(-time.Second))
	ends := now.Add(100 * time.Millisecond)
	revoke(t, s, "ended", ends)
	// Backends may be late by one second in ending a revocation.
	waitUntil(ends.Add(time.Second + slack))

	got := scanAll(t, ss)
	for jti, exp := range want {
		untils, ok := got[jti]
		if !ok {
			t.Errorf("ScanRevoked did not report %s, revoked until %s", quote(jti), exp.Format(time.RFC3339Nano))
			continue
		}
		for _, until := range untils {
			if until.Before(exp.Truncate(time.Millisecond)) || until.After(exp.Add(time.Second)) {
				t.Errorf("ScanRevoked reported %s until %s, want %s (to the millisecond, at most 1s later)",
					quote(jti), until.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano))
			}
		}
	}
	for jti := range got {
		switch _, ok := want[jti]; {
		case jti == "past":
			t.Error("ScanRevoked reported a revocation made with a past exp")
		case jti == "ended":
			t.Error("ScanRevoked reported a revocation that ended more than a second before the call")
		case !ok:
			t.Errorf("ScanRevoked reported %s, never revoked", quote(jti))
		}
	}

	// An error from fn stops the scan and comes back as is.
	errStop := errors.New("conformance: stop")
	calls := 0
	if err := ss.ScanRevoked(ctx, func(string, time.Time) error { calls++; return errStop }); err != errStop {
		t.Errorf("ScanRevoked whose fn failed returned %v, want fn's error as is", err)
	}
	if calls != 1 {
		t.Errorf("ScanRevoked called fn %d times after it returned an error, want it to stop at once", calls-1)
	}

	// A done context fails before any work.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err := ss.ScanRevoked(canceled, func(string, time.Time) error {
		t.Error("ScanRevoked with a done context called fn")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ScanRevoked with a done context returned %v, want an error wrapping context.Canceled", err)
	}
}

// testScanUnavailable checks that a scan of a backend that cannot answer
// fails, in time: a nil error after reporting nothing would be an empty
// blocklist, and a replica loaded from it would let every token back in.
func testScanUnavailable(t *testing.T, s blocklist.Store, deadline time.Duration) {
	t.Helper()
	ss, ok := s.(blocklist.ScanStore)
	if !ok {
		return
	}
	callUnavailable(t, deadline, "ScanRevoked", func(ctx context.Context) (bool, error) {
		reported := false
		err := ss.ScanRevoked(ctx, func(string, time.Time) error { reported = true; return nil })
		return reported, err
	})
}
