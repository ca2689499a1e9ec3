// Package metrictest reads OpenTelemetry metrics in tests: a meter provider
// of the SDK with a manual reader, and the few lookups the tests assert on.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// NewMeterProvider returns a meter provider of the SDK and the manual reader
// it reports to. The provider is shut down when the test or benchmark ends.
func NewMeterProvider(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, reader
}

// Collect reads every metric of reader once and returns them by name,
// across all instrumentation scopes. A failed collection fails the test.
func Collect(t testing.TB, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// Int64Point returns the value of the int64 sum m at the attribute set of
// kv (no kv: the point without attributes). It fails the test if m is not
// an int64 sum or has no point for that set.
func Int64Point(t testing.TB, m metricdata.Metrics, kv ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(kv...)
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%q is %T, not an int64 sum", m.Name, m.Data)
	}
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	t.Fatalf("%s has no point for %v", m.Name, kv)
	return 0
}

// HistCount returns how many values the float64 histogram m recorded,
// summed over all its points. It fails the test if m is not a float64
// histogram.
func HistCount(t testing.TB, m metricdata.Metrics) uint64 {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%q is %T, not a float64 histogram", m.Name, m.Data)
	}
	var n uint64
	for _, dp := range h.DataPoints {
		n += dp.Count
	}
	return n
}
