package jwtguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/jwtblocklist/blocklist/internal/metrictest"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

// crossOriginCases are the requests of a browser (or a forger) that the
// cross-origin check tells apart. httptest.NewRequest's Host is
// example.com.
var crossOriginCases = []struct {
	name    string
	method  string
	bearer  bool // token in the Authorization header instead of the cookie
	headers map[string]string
	allowed bool
}{
	{"cookie, Origin of another site", http.MethodPost, false, map[string]string{"Origin": "https://evil.example"}, false},
	{"cookie, Sec-Fetch-Site cross-site", http.MethodPost, false, map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
	{"cookie, Sec-Fetch-Site same-site", http.MethodPost, false, map[string]string{"Sec-Fetch-Site": "same-site"}, false},
	{"cookie, cross-site wins over a matching Origin", http.MethodPost, false, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://example.com"}, false},
	{"cookie, DELETE from another site", http.MethodDelete, false, map[string]string{"Origin": "https://evil.example"}, false},
	{"cookie, Sec-Fetch-Site same-origin", http.MethodPost, false, map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
	{"cookie, Origin of this host", http.MethodPost, false, map[string]string{"Origin": "http://example.com"}, true},
	{"cookie, Sec-Fetch-Site none (typed by the user)", http.MethodPost, false, map[string]string{"Sec-Fetch-Site": "none"}, true},
	{"cookie, no headers (not a browser)", http.MethodPost, false, nil, true},
	{"cookie, GET from another site (safe method)", http.MethodGet, false, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, true},
	{"bearer, Origin of another site", http.MethodPost, true, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, true},
}

func crossOriginRequest(method string, token string, asBearer bool, headers map[string]string) *http.Request {
	r := cookieRequest(method, token)
	if asBearer {
		r = bearerRequest(method, token)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestCrossOriginMiddleware(t *testing.T) {
	g := newGuard(t, newMemory(t))
	h := g.Middleware(whoami)
	token := hs256(t, claims("jti-co"))
	for _, tc := range crossOriginCases {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, crossOriginRequest(tc.method, token, tc.bearer, tc.headers))
			want := http.StatusForbidden
			if tc.allowed {
				want = http.StatusOK
			}
			if res.code != want {
				t.Errorf("status = %d (%q); want %d", res.code, res.body, want)
			}
		})
	}
}

func TestCrossOriginLogoutHandler(t *testing.T) {
	for i, tc := range crossOriginCases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemory(t)
			g := newGuard(t, store)
			token := hs256(t, claims("jti-co-logout-"+string(rune('a'+i))))
			res := serve(g.LogoutHandler(), crossOriginRequest(tc.method, token, tc.bearer, tc.headers))
			want := http.StatusForbidden
			if tc.allowed {
				want = http.StatusNoContent
			}
			if res.code != want {
				t.Errorf("status = %d (%q); want %d", res.code, res.body, want)
			}
			_, err := g.Verify(context.Background(), token)
			if revoked := errors.Is(err, jwtguard.ErrRevoked); revoked != tc.allowed {
				t.Errorf("after logout, Verify = %v; want revoked = %v", err, tc.allowed)
			}
			if !tc.allowed && res.header.Get("Set-Cookie") != "" {
				t.Errorf("a refused logout cleared the cookie: %q", res.header.Get("Set-Cookie"))
			}
		})
	}
}

func TestCrossOriginLogoutAndTokenFromRequest(t *testing.T) {
	g := newGuard(t, newMemory(t))
	token := hs256(t, claims("jti-co-fn"))
	for _, tc := range crossOriginCases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := g.TokenFromRequest(crossOriginRequest(tc.method, token, tc.bearer, tc.headers))
			if tc.allowed {
				if err != nil || raw != token {
					t.Errorf("TokenFromRequest = %q, %v; want the token", raw, err)
				}
				return
			}
			if !errors.Is(err, jwtguard.ErrCrossOrigin) || raw != "" {
				t.Errorf("TokenFromRequest = %q, %v; want ErrCrossOrigin", raw, err)
			}
			rec := httptest.NewRecorder()
			if err := g.Logout(rec, crossOriginRequest(tc.method, token, tc.bearer, tc.headers)); !errors.Is(err, jwtguard.ErrCrossOrigin) {
				t.Errorf("Logout = %v; want ErrCrossOrigin", err)
			}
			if rec.Header().Get("Set-Cookie") != "" {
				t.Errorf("a refused Logout cleared the cookie")
			}
		})
	}
}

func TestWithCrossOriginProtection(t *testing.T) {
	p := http.NewCrossOriginProtection()
	if err := p.AddTrustedOrigin("https://app.example"); err != nil {
		t.Fatal(err)
	}
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "custom refusal", http.StatusForbidden)
	}))
	g := newGuard(t, newMemory(t), jwtguard.WithCrossOriginProtection(p))
	token := hs256(t, claims("jti-co-opt"))

	res := serve(g.Middleware(whoami), crossOriginRequest(http.MethodPost, token, false,
		map[string]string{"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}))
	if res.code != http.StatusOK {
		t.Errorf("trusted origin: status = %d; want 200", res.code)
	}
	for name, h := range map[string]http.Handler{"middleware": g.Middleware(whoami), "logout": g.LogoutHandler()} {
		res = serve(h, crossOriginRequest(http.MethodPost, token, false, map[string]string{"Origin": "https://evil.example"}))
		if res.code != http.StatusForbidden || !strings.Contains(res.body, "custom refusal") {
			t.Errorf("%s, untrusted origin: %d %q; want 403 from the deny handler", name, res.code, res.body)
		}
	}

	if g, err := jwtguard.New(newMemory(t), keyFunc, jwtguard.WithAlgorithms("HS256"), jwtguard.WithCrossOriginProtection(nil)); err == nil || g != nil {
		t.Errorf("New with WithCrossOriginProtection(nil) = %v, %v; want an error", g, err)
	} else if !strings.Contains(err.Error(), "WithCrossOriginProtection(nil)") {
		t.Errorf("error = %q; want it to name WithCrossOriginProtection(nil)", err)
	}
}

func TestTokenFromRequest(t *testing.T) {
	g := newGuard(t, newMemory(t))
	for _, tc := range []struct {
		name    string
		r       *http.Request
		want    string
		wantErr error
	}{
		{"bearer", bearerRequest(http.MethodGet, "abc"), "abc", nil},
		{"bearer scheme in any case", header("Authorization", "bEaReR abc"), "abc", nil},
		{"bearer before cookie", withCookie(bearerRequest(http.MethodGet, "abc"), "def"), "abc", nil},
		{"cookie", cookieRequest(http.MethodGet, "def"), "def", nil},
		{"other scheme, then cookie", withCookie(header("Authorization", "Basic eDp5"), "def"), "def", nil},
		{"nothing", httptest.NewRequest(http.MethodGet, "/", nil), "", jwtguard.ErrNoToken},
		{"empty bearer", header("Authorization", "Bearer "), "", jwtguard.ErrInvalidToken},
		{"two headers", header("Authorization", "Bearer a", "Bearer b"), "", jwtguard.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := g.TokenFromRequest(tc.r)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("TokenFromRequest = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// A refused cross-origin request counts as a request with the outcome
// cross_origin.
func TestCrossOriginMetric(t *testing.T) {
	mp, reader := metrictest.NewMeterProvider(t)
	g := newGuard(t, newMemory(t), jwtguard.WithMeterProvider(mp))
	token := hs256(t, claims("jti-co-metric"))
	evil := map[string]string{"Origin": "https://evil.example"}
	serve(g.Middleware(whoami), crossOriginRequest(http.MethodPost, token, false, evil))
	serve(g.Middleware(whoami), crossOriginRequest(http.MethodPost, token, false, nil))
	m := metrictest.Collect(t, reader)
	if got := metrictest.Int64Point(t, m["jwtguard.requests"], attribute.String("jwtguard.outcome", jwtguard.OutcomeCrossOrigin)); got != 1 {
		t.Errorf("jwtguard.requests{outcome=cross_origin} = %d; want 1", got)
	}
	if got := metrictest.Int64Point(t, m["jwtguard.requests"], attribute.String("jwtguard.outcome", jwtguard.OutcomeAccepted)); got != 1 {
		t.Errorf("jwtguard.requests{outcome=accepted} = %d; want 1", got)
	}
}
