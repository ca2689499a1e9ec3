package redisstore

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// BenchmarkClusterRevoke times Revoke on a 3+3 Redis Cluster (AOF always)
// in five forms taking turns, one fresh id per call, in the same run:
//
//	set              a raw SET key 1 PXAT ms, one round trip (the floor)
//	one-stream       the layout before per-master streams: MULTI/EXEC on
//	                 the key's master and, concurrently, XADD on the one
//	                 stream <prefix> (on whichever master holds it)
//	per-master       Revoke: MULTI/EXEC and XADD on the key's master's
//	                 stream, one pipeline
//	one-stream-wait  one-stream under WithWait(1, 100ms): WAIT after each
//	per-master-wait  per-master under WithWait(1, 100ms): one WAIT
//
// It reports each form's p50 and p99 in µs and their ratios to
// one-stream (and one-stream-wait for the waiting forms). Run it with a
// fixed count, e.g. -benchtime=5000x.
func BenchmarkClusterRevoke(b *testing.B) {
	cluster := testserver.RedisClusterWithReplicas(b, 3, 1)
	client := redistest.ClusterClient(b, cluster.Addrs())
	ctx := context.Background()
	exp := time.Now().Add(30 * time.Minute)
	prefix := redistest.Prefix(b)

	// The old layout: a Store without per-master streams takes the path
	// a Ring takes (announceAsync on s.stream), which is what Cluster did.
	oneStream := func(opts ...Option) *Store {
		s := New(client, append([]Option{WithPrefix(prefix + "one:")}, opts...)...)
		s.streams = nil
		return s
	}
	wait := WithWait(1, 100*time.Millisecond)
	forms := []struct {
		name   string
		revoke func(jti string) error
	}{
		{"set", func(jti string) error {
			return client.Do(ctx, "set", prefix+"set:"+jti, "1", "pxat", exp.UnixMilli()).Err()
		}},
		{"one-stream", oneStream().revoker(ctx, exp)},
		{"per-master", New(client, WithPrefix(prefix+"per:")).revoker(ctx, exp)},
		{"one-stream-wait", oneStream(wait).revoker(ctx, exp)},
		{"per-master-wait", New(client, WithPrefix(prefix+"perw:"), wait).revoker(ctx, exp)},
	}
	// Warm up: connections to every master, the slot maps, the streams.
	for i := range 50 {
		for _, f := range forms {
			if err := f.revoke("warm-" + strconv.Itoa(i)); err != nil {
				b.Fatal(f.name, err)
			}
		}
	}
	lat := make([][]time.Duration, len(forms))
	i := 0
	for b.Loop() {
		f := i % len(forms)
		if (i/len(forms))%2 == 1 {
			f = len(forms) - 1 - f // A B C D E E D C B A ...
		}
		jti := strconv.Itoa(i)
		start := time.Now()
		if err := forms[f].revoke(jti); err != nil {
			b.Fatal(forms[f].name, err)
		}
		lat[f] = append(lat[f], time.Since(start))
		i++
	}
	pct := func(d []time.Duration, p float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		if len(d) == 0 {
			return 0
		}
		return float64(d[int(p*float64(len(d)-1))].Microseconds())
	}
	p50 := make([]float64, len(forms))
	p99 := make([]float64, len(forms))
	for f, form := range forms {
		p50[f], p99[f] = pct(lat[f], 0.50), pct(lat[f], 0.99)
		b.ReportMetric(p50[f], form.name+"-p50-µs")
		b.ReportMetric(p99[f], form.name+"-p99-µs")
	}
	if p50[1] > 0 && p50[3] > 0 {
		b.ReportMetric(p50[2]/p50[1], "per-master/one-stream-p50")
		b.ReportMetric(p99[2]/p99[1], "per-master/one-stream-p99")
		b.ReportMetric(p50[4]/p50[3], "per-master-wait/one-stream-wait-p50")
		b.ReportMetric(p99[4]/p99[3], "per-master-wait/one-stream-wait-p99")
		b.ReportMetric(p50[1]/p50[0], "one-stream/set-p50")
		b.ReportMetric(p50[2]/p50[0], "per-master/set-p50")
	}
}

// revoker returns Revoke of s with exp, as a function of the id.
func (s *Store) revoker(ctx context.Context, exp time.Time) func(string) error {
	return func(jti string) error { return s.Revoke(ctx, jti, exp) }
}
