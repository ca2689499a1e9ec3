package jwtguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// nothingRevoked is a Store with no blocklist behind it: IsRevoked answers
// at once. A Guard over it costs what verification alone costs, so it is the
// baseline the blocklist check is measured against.
type nothingRevoked struct{}

func (nothingRevoked) Revoke(context.Context, string, time.Time) error { return nil }
func (nothingRevoked) IsRevoked(context.Context, string) (bool, error) { return false, nil }

// BenchmarkMiddleware measures one request through the middleware with a
// valid HS256 token, up to an empty next handler:
//
//   - verify-only: the same Guard over a Store that answers at once, i.e.
//     the request without a blocklist;
//   - memorystore, cached-memorystore: with the blocklist check;
//   - jwt-only: golang-jwt's ParseWithClaims with the same options and
//     nothing else, to show what the Guard itself adds.
//
// The blocklist check's cost is the difference between a row and
// verify-only, in the same run. The token's id is revoked nowhere, so the
// cache answers from its "not revoked" entry as it does for almost every
// request in production.
func BenchmarkMiddleware(b *testing.B) {
	token := hs256(b, claims("0f8c1d2e-5a6b-4c7d-8e9f-a0b1c2d3e4f5"))
	mem := newMemory(b)
	cache, err := cached.New(newMemory(b))
	if err != nil {
		b.Fatal(err)
	}
	stores := []struct {
		name  string
		store blocklist.Store
	}{
		{"verify-only", nothingRevoked{}},
		{"memorystore", mem},
		{"cached-memorystore", cache},
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, s := range stores {
		h := newGuard(b, s.store).Middleware(next)
		b.Run(s.name, func(b *testing.B) { benchHandler(b, h, token) })
	}

	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	raw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if _, err := parser.ParseWithClaims(auth[len("Bearer "):], jwt.MapClaims{}, keyFunc); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
	b.Run("jwt-only", func(b *testing.B) { benchHandler(b, raw, token) })
}

func benchHandler(b *testing.B, h http.Handler, token string) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := &statusWriter{header: http.Header{}}
	h.ServeHTTP(w, r)
	if w.code != 0 && w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// statusWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the middleware and not a recorder.
type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) Header() http.Header         { return w.header }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkBlocklistOverhead measures what the blocklist check adds to a
// request, robustly on a busy machine: each iteration serves one request
// through the Guard without a blocklist (verify-only above) and one through
// the Guard with it, in alternating order, timing each. The medians of the
// two series are reported as verify-ns/op and guarded-ns/op, and their
// ratio as overhead-% (the goal is at most 5). ns/op is the pair.
func BenchmarkBlocklistOverhead(b *testing.B) {
	token := hs256(b, claims("0f8c1d2e-5a6b-4c7d-8e9f-a0b1c2d3e4f5"))
	cache, err := cached.New(newMemory(b))
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	base := newGuard(b, nothingRevoked{}).Middleware(next)
	for _, s := range []struct {
		name  string
		store blocklist.Store
	}{
		{"memorystore", newMemory(b)},
		{"cached-memorystore", cache},
	} {
		guarded := newGuard(b, s.store).Middleware(next)
		b.Run(s.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			w := &statusWriter{header: http.Header{}}
			var baseNs, guardedNs []int64
			timed := func(h http.Handler) int64 {
				t0 := time.Now()
				h.ServeHTTP(w, r)
				return int64(time.Since(t0))
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					baseNs = append(baseNs, timed(base))
					guardedNs = append(guardedNs, timed(guarded))
				} else {
					guardedNs = append(guardedNs, timed(guarded))
					baseNs = append(baseNs, timed(base))
				}
			}
			if w.code != 0 && w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
			mb, mg := median(baseNs), median(guardedNs)
			b.ReportMetric(mb, "verify-ns/op")
			b.ReportMetric(mg, "guarded-ns/op")
			b.ReportMetric(100*(mg-mb)/mb, "overhead-%")
		})
	}
}

func median(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

// BenchmarkRefresh measures the session paths on memorystore: a login
// (NewSession) as the baseline, a login followed by its first exchange,
// and a replay answered within the grace period (a lookup, a read of the
// exchange record and the signing of the same pair again).
func BenchmarkRefresh(b *testing.B) {
	// The Guard's clock stands still, so the replay stays within the grace
	// period however long the benchmark runs; the Store's runs on, and
	// every record it holds lives hours past it.
	now := time.Now()
	clock := func() time.Time { return now }
	store := memorystore.New()
	b.Cleanup(func() { store.Close() })
	g := newGuard(b, store, jwtguard.WithClock(clock), jwtguard.WithSessions(jwtguard.Sessions{
		SigningMethod: jwt.SigningMethodHS256, SigningKey: testKey, GracePeriod: time.Minute,
	}))
	ctx := context.Background()
	b.Run("login", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.NewSession("alice", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("login+exchange", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := g.NewSession("alice", nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.Refresh(ctx, p.RefreshToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("grace-replay", func(b *testing.B) {
		p, err := g.NewSession("alice", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Refresh(ctx, p.RefreshToken); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Refresh(ctx, p.RefreshToken); err != nil {
				b.Fatal(err)
			}
		}
	})
}
