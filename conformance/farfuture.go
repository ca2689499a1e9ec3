package conformance

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// The check of exps far beyond any real token's.

// horizon is the earliest time a store may saturate a later exp to: the
// latest time int64 Unix nanoseconds hold, 2262-04-11T23:47:16.854775807Z.
// A revocation whose exp is later must last at least until Horizon; one
// whose exp is earlier, until its exp.
var horizon = time.Unix(0, math.MaxInt64)

// farExps are exps around every bound a conversion of a time.Time can
// cross, up to the latest time.Time there is. Converted without saturation
// each of them wraps around: to a time in the past (a key stored already
// expired, a revocation that silently does nothing) or to a negative count
// (refused by the server, so that the token can never be logged out).
func farExps() map[string]time.Time {
	return map[string]time.Time{
		"int64-nanoseconds":         time.Unix(0, math.MaxInt64),
		"int64-nanoseconds+1ns":     time.Unix(0, math.MaxInt64).Add(1),
		"int64-nanoseconds+1s":      time.Unix(0, math.MaxInt64).Add(time.Second),
		"int64-microseconds+1us":    time.UnixMicro(math.MaxInt64).Add(time.Microsecond),
		"int64-milliseconds-1ms":    time.UnixMilli(math.MaxInt64 - 1),
		"int64-milliseconds":        time.UnixMilli(math.MaxInt64),
		"int64-milliseconds+1ns":    time.UnixMilli(math.MaxInt64).Add(1),
		"int64-milliseconds+1ms":    time.UnixMilli(math.MaxInt64).Add(time.Millisecond),
		"negative-milliseconds":     time.Unix(1e16, 0),
		"uint64-milliseconds-wrap":  time.Unix(18446744073709552, 0), // ms mod 2^64 = 384: 1970
		"uint64-milliseconds-wrap2": time.Unix(2*18446744073709552, 0),
		"uint32-seconds+1s":         time.Unix(math.MaxUint32+1, 0),
		"2^62-seconds":              time.Unix(1<<62, 0),
		"latest-time.Time":          latestTime,
	}
}

// latestTime is the latest instant a time.Time holds.
var latestTime = time.Unix(math.MaxInt64-62135596800, 999_999_999)

// wantFar checks that jti is revoked for exp: IsRevoked true and, for an
// ExpiryStore, RevokedUntil at least min(exp, horizon) and at most one
// second after exp.
func wantFar(t *testing.T, s blocklist.Store, jti string, exp time.Time, why string) {
	t.Helper()
	wantRevoked(t, s, jti, true, why)
	es, ok := s.(blocklist.ExpiryStore)
	if !ok {
		return
	}
	got, err := es.RevokedUntil(context.Background(), jti)
	if err != nil {
		t.Fatalf("RevokedUntil(%s): %v", quote(jti), err)
	}
	checkFarUntil(t, "RevokedUntil("+quote(jti)+")", got, exp)
}

func checkFarUntil(t *testing.T, what string, got, exp time.Time) {
	t.Helper()
	low := exp
	if low.After(horizon) {
		low = horizon
	}
	if got.Before(low.Truncate(time.Millisecond)) || got.After(exp.Add(time.Second)) {
		t.Errorf("%s = %s, want from %s (the exp, or %s if that is earlier) to one second after the exp %s",
			what, got.Format(time.RFC3339Nano), low.Truncate(time.Millisecond).Format(time.RFC3339Nano),
			horizon.Format(time.RFC3339), exp.Format(time.RFC3339Nano))
	}
}

// testFarFuture checks exps from the year 2262 to the latest time.Time:
// Revoke stores each (saturated to what the backend holds, never wrapped to
// the past, never refused), RevokeOnce reports true only with a revocation
// stored, RevokedUntilEach agrees, and revocation stays monotonic among them.
func testFarFuture(t *testing.T, s blocklist.Store) {
	ctx := context.Background()
	exps := farExps()
	for name, exp := range exps {
		revoke(t, s, "far-"+name, exp)
	}
	for name, exp := range exps {
		wantFar(t, s, "far-"+name, exp, "revoked with exp "+exp.Format(time.RFC3339))
	}

	// Monotonic at the far end: a nearer exp never shortens a far one, and
	// a far exp extends a near one.
	hour := time.Now().Add(time.Hour)
	for name, exp := range exps {
		revoke(t, s, "far-"+name, hour)
		wantFar(t, s, "far-"+name, exp, "a nearer exp must not shorten a far revocation")
		revoke(t, s, "near-then-far-"+name, hour)
		revoke(t, s, "near-then-far-"+name, exp)
		wantFar(t, s, "near-then-far-"+name, exp, "a far exp extends a near revocation")
	}
	// Two far exps on either side of a saturation bound: the later wins.
	revoke(t, s, "latest-then-2262", latestTime)
	revoke(t, s, "latest-then-2262", horizon.Add(-time.Second))
	wantFar(t, s, "latest-then-2262", latestTime, "an exp in 2262 must not shorten one at the latest time")

	if bs, ok := s.(blocklist.BatchStore); ok {
		var jtis []string
		var want []time.Time
		for name, exp := range exps {
			jtis = append(jtis, "far-"+name, "near-then-far-"+name)
			want = append(want, exp, exp)
		}
		until := make([]time.Time, len(jtis))
		if err := bs.RevokedUntilEach(ctx, jtis, until); err != nil {
			t.Fatalf("RevokedUntilEach of %d far revocations: %v", len(jtis), err)
		}
		for i := range jtis {
			checkFarUntil(t, "RevokedUntilEach: until for "+quote(jtis[i]), until[i], want[i])
		}
	}

	if os, ok := s.(blocklist.OnceStore); ok {
		for name, exp := range exps {
			jti := "once-far-" + name
			first, err := os.RevokeOnce(ctx, jti, exp)
			if errors.Is(err, errors.ErrUnsupported) {
				break
			}
			if err != nil {
				t.Fatalf("RevokeOnce(%s, %s): %v", quote(jti), exp.Format(time.RFC3339), err)
			}
			if !first {
				t.Errorf("RevokeOnce(%s, %s) of an id never revoked = false, want true", quote(jti), exp.Format(time.RFC3339))
			}
			wantFar(t, s, jti, exp, "RevokeOnce reported true")
			if first, err := os.RevokeOnce(ctx, jti, exp); err != nil || first {
				t.Errorf("second RevokeOnce(%s, %s) = %v, %v; want false, nil: the first one stored nothing",
					quote(jti), exp.Format(time.RFC3339), first, err)
			}
		}
	}
}
