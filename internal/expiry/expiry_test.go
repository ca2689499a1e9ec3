package expiry_test

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/expiry"
)

// latest is the latest time.Time there is.
var latest = time.Unix(math.MaxInt64-62135596800, 999_999_999)

// exact returns t in Unix nanoseconds, without overflow.
func exact(t time.Time) *big.Int {
	n := big.NewInt(t.Unix())
	n.Mul(n, big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(t.Nanosecond())))
}

// wantCeilMillis is CeilMillis computed with unbounded integers.
func wantCeilMillis(t time.Time) int64 {
	ns := exact(t)
	ms, rem := new(big.Int).DivMod(ns, big.NewInt(1e6), new(big.Int)) // floor
	if rem.Sign() != 0 {
		ms.Add(ms, big.NewInt(1))
	}
	return clamp(ms)
}

func clamp(n *big.Int) int64 {
	switch {
	case n.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return math.MaxInt64
	case n.Cmp(big.NewInt(math.MinInt64)) < 0:
		return math.MinInt64
	}
	return n.Int64()
}

// edges are the times around every bound a conversion can cross.
func edges() []time.Time {
	var ts []time.Time
	for _, base := range []time.Time{
		time.Unix(0, 0), time.Now(),
		time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64),
		time.UnixMicro(math.MaxInt64), time.UnixMicro(math.MinInt64),
		time.UnixMilli(math.MaxInt64), time.UnixMilli(math.MinInt64),
		time.Unix(math.MaxInt64/1000, 0), time.Unix(math.MinInt64/1000, 0),
		time.Unix(18446744073709552, 0), // ms wrap to 1970
		time.Unix(1<<62, 0), time.Unix(-1<<62, 0),
		latest, time.Time{},
	} {
		for _, d := range []time.Duration{0, 1, -1, 999_999, 1_000_001, -999_999, time.Millisecond, -time.Millisecond, time.Second, -time.Second} {
			ts = append(ts, base.Add(d))
		}
	}
	return ts
}

func TestCeilMillis(t *testing.T) {
	for _, tm := range edges() {
		if got, want := expiry.CeilMillis(tm), wantCeilMillis(tm); got != want {
			t.Errorf("CeilMillis(%s) = %d, want %d", tm.Format(time.RFC3339Nano), got, want)
		}
	}
}

func TestUnixNano(t *testing.T) {
	for _, tm := range edges() {
		if got, want := expiry.UnixNano(tm), clamp(exact(tm)); got != want {
			t.Errorf("UnixNano(%s) = %d, want %d", tm.Format(time.RFC3339Nano), got, want)
		}
	}
}

// FuzzConversions checks both conversions against unbounded arithmetic for
// any time.Time, and that they keep order: a later time never converts to a
// smaller number.
func FuzzConversions(f *testing.F) {
	for _, tm := range edges() {
		f.Add(tm.Unix(), int64(tm.Nanosecond()), int64(1))
	}
	f.Fuzz(func(t *testing.T, sec, nsec, step int64) {
		if sec > latest.Unix() {
			sec = latest.Unix() // time.Unix beyond this wraps
		}
		tm := time.Unix(sec, (nsec%1e9+1e9)%1e9)
		if got, want := expiry.CeilMillis(tm), wantCeilMillis(tm); got != want {
			t.Fatalf("CeilMillis(%s) = %d, want %d", tm.Format(time.RFC3339Nano), got, want)
		}
		if got, want := expiry.UnixNano(tm), clamp(exact(tm)); got != want {
			t.Fatalf("UnixNano(%s) = %d, want %d", tm.Format(time.RFC3339Nano), got, want)
		}
		if later := tm.Add(time.Duration(step & math.MaxInt64)); later.After(tm) {
			if expiry.CeilMillis(later) < expiry.CeilMillis(tm) || expiry.UnixNano(later) < expiry.UnixNano(tm) {
				t.Fatalf("a later time %s converts to less than %s", later, tm)
			}
		}
	})
}

var sink int64

// The conversions against the plain ones they replace, on a near exp: a
// few comparisons more, no allocation.
func BenchmarkCeilMillis(b *testing.B) {
	t := time.Now().Add(time.Hour)
	b.Run("expiry.CeilMillis", func(b *testing.B) {
		for b.Loop() {
			sink = expiry.CeilMillis(t)
		}
	})
	b.Run("time.UnixMilli", func(b *testing.B) {
		for b.Loop() {
			sink = t.UnixMilli()
		}
	})
}
