package measure

import (
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// versusDefaults keep a Versus benchmark to a few seconds per Store.
var versusDefaults = []Option{
	WithOps(2_000), WithWarmup(200), WithMinDuration(100 * time.Millisecond), WithMaxDuration(2 * time.Second),
}

// Versus is a Go benchmark of s against raw, the raw client calls s is
// built on, measured by Measure in turns (WithBaseline) against the same
// server in the same run. It reports, per phase, the median of each in
// nanoseconds and their ratio, which is the cost of s itself:
//
//	revoked-ns revoked-raw-ns revoked-x-raw        IsRevoked of revoked ids
//	unrevoked-ns unrevoked-raw-ns unrevoked-x-raw  IsRevoked of ids never revoked
//	revoke-ns revoke-raw-ns revoke-x-raw           Revoke of a fresh id
//	parallel-x-raw                                 raw's parallel rate over s's
//
// opts are added to short defaults (2,000 operations a phase, at most 2 s).
func Versus(b *testing.B, s, raw blocklist.Store, opts ...Option) {
	b.Helper()
	opts = append(append(append([]Option(nil), versusDefaults...), opts...), WithBaseline("raw", raw))
	var res Result
	for b.Loop() {
		var err error
		if res, err = Measure(b.Context(), "store", s, opts...); err != nil {
			b.Fatal(err)
		}
	}
	if res.Baseline == nil {
		return
	}
	report := func(name string, ours, theirs Latency) {
		b.ReportMetric(float64(ours.P50.Nanoseconds()), name+"-ns")
		b.ReportMetric(float64(theirs.P50.Nanoseconds()), name+"-raw-ns")
		if theirs.P50 > 0 {
			b.ReportMetric(float64(ours.P50)/float64(theirs.P50), name+"-x-raw")
		}
	}
	report("revoked", res.Revoked, res.Baseline.Revoked)
	report("unrevoked", res.Unrevoked, res.Baseline.Unrevoked)
	report("revoke", res.Revoke, res.Baseline.Revoke)
	if ours := res.Parallel.OpsPerSec; ours > 0 {
		b.ReportMetric(res.Baseline.Parallel.OpsPerSec/ours, "parallel-x-raw")
	}
}
