package jwtguard_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jwtblocklist/blocklist/internal/metrictest"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

func TestMetricsAndLogs(t *testing.T) {
	mp, reader := metrictest.NewMeterProvider(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := newMemory(t)
	g := newGuard(t, store, jwtguard.WithMeterProvider(mp), jwtguard.WithLogger(logger), sessionOptions())
	h := g.Middleware(whoami)

	good := hs256(t, claims("good"))
	revoked := hs256(t, claims("gone"))
	if err := g.Revoke(t.Context(), revoked); err != nil {
		t.Fatal(err)
	}
	for _, req := range []*http.Request{
		bearerRequest("GET", good), bearerRequest("GET", good),
		bearerRequest("GET", revoked),
		bearerRequest("GET", "not-a-token"),
		bearerRequest("GET", ""),
	} {
		serve(h, req)
	}
	noToken, _ := http.NewRequest("GET", "/", nil)
	serve(h, noToken)
	store.Close()
	if res := serve(h, bearerRequest("GET", good)); res.code != http.StatusServiceUnavailable {
		t.Fatalf("store closed: %d", res.code)
	}

	m := metrictest.Collect(t, reader)
	outcome := func(v string) attribute.KeyValue { return attribute.String("jwtguard.outcome", v) }
	for o, want := range map[string]int64{
		jwtguard.OutcomeAccepted: 2, jwtguard.OutcomeRevoked: 1, jwtguard.OutcomeInvalid: 2,
		jwtguard.OutcomeNoToken: 1, jwtguard.OutcomeStoreError: 1,
	} {
		if got := metrictest.Int64Point(t, m["jwtguard.requests"], outcome(o)); got != want {
			t.Errorf("jwtguard.requests{outcome=%s} = %d; want %d", o, got, want)
		}
	}
	if got := metrictest.Int64Point(t, m["jwtguard.revocations"], attribute.String("jwtguard.revocation.kind", "token"), outcome("ok")); got != 1 {
		t.Errorf("jwtguard.revocations{token, ok} = %d; want 1", got)
	}
	hist, ok := m["jwtguard.check.duration"].Data.(metricdata.Histogram[float64])
	if !ok || m["jwtguard.check.duration"].Unit != "s" {
		t.Fatalf("jwtguard.check.duration: %+v", m["jwtguard.check.duration"])
	}
	var n uint64
	for _, dp := range hist.DataPoints {
		n += dp.Count
	}
	if n != 7 {
		t.Errorf("check.duration counted %d checks; want 7", n)
	}

	out := logs.String()
	for _, want := range []string{
		"level=ERROR msg=\"jwtguard: the blocklist store failed\" op=check failed_open=false err=",
		"level=DEBUG msg=\"jwtguard: token refused\" outcome=revoked",
		"level=DEBUG msg=\"jwtguard: token refused\" outcome=no_token",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{good, revoked} {
		if strings.Contains(out, secret) {
			t.Errorf("a token is in the logs:\n%s", out)
		}
	}
}

// The default ErrorHandler path logs the Store's failure, with the
// default logger when none is given.
func TestDefaultErrorHandlerLogs(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	store := newMemory(t)
	g := newGuard(t, store)
	store.Close()
	if res := serve(g.Middleware(whoami), bearerRequest("GET", hs256(t, claims("x")))); res.code != 503 {
		t.Fatalf("%d; want 503", res.code)
	}
	if res := serve(g.LogoutHandler(), bearerRequest("POST", hs256(t, claims("y")))); res.code != 503 {
		t.Fatalf("logout: %d; want 503", res.code)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 || !strings.Contains(logs.String(), "closed") {
		t.Errorf("want two Error records with the error:\n%s", logs.String())
	}
}

func TestObserveOptions(t *testing.T) {
	store := newMemory(t)
	for _, opt := range []jwtguard.Option{jwtguard.WithLogger(nil), jwtguard.WithMeterProvider(nil)} {
		if _, err := jwtguard.New(store, keyFunc, jwtguard.WithAlgorithms("HS256"), opt); err == nil {
			t.Error("a nil logger or provider was accepted")
		}
	}
}

func TestSessionMetricsAndLogs(t *testing.T) {
	mp, reader := metrictest.NewMeterProvider(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	g := newGuard(t, newMemory(t), jwtguard.WithMeterProvider(mp), jwtguard.WithLogger(logger), sessionOptions())
	ctx := t.Context()
	p, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refresh(ctx, p.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refresh(ctx, p.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
		t.Fatalf("second refresh: %v; want ErrRefreshReused", err)
	}
	if err := g.LogoutAll(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	m := metrictest.Collect(t, reader)
	for name, want := range map[string]int64{"jwtguard.refreshes": 1, "jwtguard.refresh.reuse_detections": 1, "jwtguard.refresh.grace_replays": 0} {
		if got := metrictest.Int64Point(t, m[name]); got != want {
			t.Errorf("%s = %d; want %d", name, got, want)
		}
	}
	kind := func(k string) attribute.KeyValue { return attribute.String("jwtguard.revocation.kind", k) }
	ok := attribute.String("jwtguard.outcome", "ok")
	if got := metrictest.Int64Point(t, m["jwtguard.revocations"], kind("session"), ok); got != 1 {
		t.Errorf("revocations{session} = %d; want 1", got)
	}
	if got := metrictest.Int64Point(t, m["jwtguard.revocations"], kind("subject"), ok); got != 1 {
		t.Errorf("revocations{subject} = %d; want 1", got)
	}
	want := "level=WARN msg=\"jwtguard: refresh token reused; session revoked\" sid=" + p.SessionID + " sub=alice"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, logs.String())
	}
}

// Recording a check allocates nothing: Verify allocates as much with the
// SDK installed as without a provider.
func TestMetricsAllocateNothing(t *testing.T) {
	mp, _ := metrictest.NewMeterProvider(t)
	store := newMemory(t)
	quiet := jwtguard.WithLogger(slog.New(slog.DiscardHandler))
	plain := newGuard(t, store, quiet)
	metered := newGuard(t, store, quiet, jwtguard.WithMeterProvider(mp))
	tok := hs256(t, claims("alloc"))
	ctx := context.Background()
	allocs := func(g *jwtguard.Guard) float64 {
		return testing.AllocsPerRun(200, func() { g.Verify(ctx, tok) })
	}
	metered.Verify(ctx, tok) // the first record of a series makes it
	if a, b := allocs(plain), allocs(metered); b > a {
		t.Errorf("Verify allocates %v times with the SDK, %v without", b, a)
	}
}
