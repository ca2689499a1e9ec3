package cached_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/logtest"
	"github.com/jwtblocklist/blocklist/internal/metrictest"
)

func TestMetricsAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp, reader := metrictest.NewMeterProvider(t)
		var logs logtest.SyncBuffer
		next := newMemory(t)
		c, err := cached.New(next, cached.WithMeterProvider(mp),
			cached.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		synctest.Wait() // the watch live
		ctx := context.Background()
		for range 3 {
			if _, err := c.IsRevoked(ctx, "a"); err != nil {
				t.Fatal(err)
			}
		}
		// Revoked in the next Store directly: it arrives by the watch.
		if err := next.Revoke(ctx, "b", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the announcement applied
		restore := next.CutWatches()
		synctest.Wait() // the watch lost
		restore()
		synctest.Wait() // the watch live again

		m := metrictest.Collect(t, reader)
		result := func(v string) attribute.KeyValue { return attribute.String("cached.result", v) }
		st := c.Stats()
		if got := metrictest.Int64Point(t, m["cached.lookups"], result(cached.ResultHit)); got != int64(st.Hits) || got != 2 {
			t.Errorf("cached.lookups{hit} = %d; want 2 (Stats %d)", got, st.Hits)
		}
		if got := metrictest.Int64Point(t, m["cached.lookups"], result(cached.ResultMiss)); got != 1 {
			t.Errorf("cached.lookups{miss} = %d; want 1", got)
		}
		if got := metrictest.Int64Point(t, m["cached.entries"]); got != 2 {
			t.Errorf("cached.entries = %d; want 2", got)
		}
		if got := metrictest.Int64Point(t, m["cached.watch.status"], attribute.String("cached.watch.state", "live")); got != 1 {
			t.Errorf("cached.watch.status{live} = %d; want 1", got)
		}
		if got := metrictest.Int64Point(t, m["cached.watch.status"], attribute.String("cached.watch.state", "lost")); got != 0 {
			t.Errorf("cached.watch.status{lost} = %d; want 0", got)
		}
		if n := metrictest.HistCount(t, m["cached.backend.duration"]); n != 1 {
			t.Errorf("cached.backend.duration counted %d calls; want 1", n)
		}
		if n := metrictest.HistCount(t, m["cached.watch.lag"]); n != 1 {
			t.Errorf("cached.watch.lag counted %d; want 1", n)
		}
		for name, unit := range map[string]string{"cached.backend.duration": "s", "cached.watch.lag": "s", "cached.lookups": "{lookup}", "cached.entries": "{entry}"} {
			if m[name].Unit != unit {
				t.Errorf("%s unit %q; want %q", name, m[name].Unit, unit)
			}
		}
		out := logs.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "to=live") || !strings.Contains(out, "to=lost") && !strings.Contains(out, "to=starting") {
			t.Errorf("state changes not logged:\n%s", out)
		}

		// A closed Store reports no more.
		c.Close()
		if _, ok := metrictest.Collect(t, reader)["cached.lookups"]; ok {
			t.Error("a closed Store still reports cached.lookups")
		}
	})
}

func TestMetricsReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp, reader := metrictest.NewMeterProvider(t)
		next := newMemory(t)
		ctx := context.Background()
		for _, id := range []string{"r1", "r2", "r3"} {
			if err := next.Revoke(ctx, id, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		c, err := cached.New(next, cached.WithReplica(), cached.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		synctest.Wait() // the replica ready
		m := metrictest.Collect(t, reader)
		if !c.Stats().ReplicaReady {
			t.Fatal("the replica is not ready")
		}
		if got := metrictest.Int64Point(t, m["cached.replica.size"]); got != 3 {
			t.Errorf("cached.replica.size = %d; want 3", got)
		}
		g, ok := m["cached.replica.time_since_sync"].Data.(metricdata.Gauge[float64])
		if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value != 0 {
			t.Errorf("cached.replica.time_since_sync: %+v", m["cached.replica.time_since_sync"].Data)
		}
	})
}

func TestWatchStateText(t *testing.T) {
	b, err := json.Marshal(map[string]cached.WatchState{"watch": cached.WatchLost})
	if err != nil || string(b) != `{"watch":"lost"}` {
		t.Errorf("JSON %s, %v", b, err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "state", cached.WatchLive)
	if !strings.Contains(buf.String(), `"state":"live"`) {
		t.Errorf("slog: %s", buf.String())
	}
}

func TestObserveOptions(t *testing.T) {
	for _, opt := range []cached.Option{cached.WithLogger(nil), cached.WithMeterProvider(nil)} {
		if _, err := cached.New(newMemory(t), opt); err == nil {
			t.Error("a nil logger or provider was accepted")
		}
	}
}

// A hit allocates nothing with the SDK installed: the counters are read at
// collection, not recorded per check.
func TestHitAllocatesNothingWithMetrics(t *testing.T) {
	mp, reader := metrictest.NewMeterProvider(t)
	c, err := cached.New(newMemory(t), cached.WithNegativeTTL(time.Hour), cached.WithoutWatch(), cached.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.IsRevoked(ctx, "hot"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { c.IsRevoked(ctx, "hot") }); n != 0 {
		t.Errorf("a hit allocates %v times with the SDK installed", n)
	}
	metrictest.Collect(t, reader)
}

// BenchmarkHitMetrics measures a cache hit without a meter provider (the
// global no-op) and with the SDK and a manual reader installed, in the
// same run; the ratio is the cost of the metrics on the hit path.
func BenchmarkHitMetrics(b *testing.B) {
	run := func(b *testing.B, opts ...cached.Option) {
		c, err := cached.New(newMemory(b), append([]cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithoutWatch()}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ids := hotIDs()
		mask := len(ids) - 1
		ctx := context.Background()
		for _, id := range ids {
			c.IsRevoked(ctx, id)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			c.IsRevoked(ctx, ids[i&mask])
		}
	}
	b.Run("without", func(b *testing.B) { run(b) })
	b.Run("sdk", func(b *testing.B) {
		mp, reader := metrictest.NewMeterProvider(b)
		defer reader.Collect(context.Background(), &metricdata.ResourceMetrics{})
		run(b, cached.WithMeterProvider(mp))
	})
}

// ScanRevoked asks the next Store; over one that cannot list it says so.
func TestScanRevokedDelegates(t *testing.T) {
	next := newMemory(t)
	if err := next.Revoke(t.Context(), "listed", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := cached.New(next, cached.WithoutWatch())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := c.ScanRevoked(t.Context(), func(jti string, _ time.Time) error { got = append(got, jti); return nil }); err != nil || len(got) != 1 || got[0] != "listed" {
		t.Fatalf("ScanRevoked: %q, %v", got, err)
	}
	plain, err := cached.New(onlyStore{next})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.ScanRevoked(t.Context(), func(string, time.Time) error { return nil }); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ScanRevoked over a Store that cannot list: %v; want ErrUnsupported", err)
	}
}

// onlyStore hides every capability but blocklist.Store.
type onlyStore struct{ blocklist.Store }
