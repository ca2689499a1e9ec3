package jwtguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// FuzzMiddleware feeds arbitrary Authorization and Cookie header values to
// the middleware. Whatever the input, it must not panic and must not let a
// request through: the seeds hold every kind of token except a valid one
// (revoked with and without jti, expired, wrong key, alg none, an algorithm
// not allowed, a 5 KB jti), so the fuzzer mutates close to the edges. A
// mutation that keeps a revoked token's signature bytes (base64 has spare
// bits) must still be refused. A value with a newline is sent as several
// headers.
//
// The Guard reads a fixed clock, so the seeds are the same tokens in every
// run: the corpus a previous run kept holds no validly signed token that
// this run has not revoked. Each input runs in a testing/synctest bubble,
// on a Store and a Guard of its own whose revocations the bubble's clock,
// fixed too (years before the Guard's), never ends.
func FuzzMiddleware(f *testing.F) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	newGuardRevoking := func(t testing.TB, tokens ...string) *jwtguard.Guard {
		store := memorystore.New()
		t.Cleanup(func() { store.Close() })
		g := newGuard(t, store, jwtguard.WithLeeway(time.Second), jwtguard.WithClock(clock))
		for _, tok := range tokens {
			if err := g.Revoke(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}
		return g
	}
	at := func(jti string, exp time.Time) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "iat": now.Unix(), "exp": exp.Unix()}
		if jti != "" {
			c["jti"] = jti
		}
		return c
	}
	live := now.Add(time.Hour)

	revoked := hs256(f, at("revoked-jti", live))
	revokedNoJTI := hs256(f, at("", live))
	tokens := []string{
		revoked,
		revokedNoJTI,
		hs256(f, at("expired", now.Add(-time.Hour))),
		hs256(f, at(strings.Repeat("j", 5<<10), live)),
		sign(f, jwt.SigningMethodHS256, wrongKey, at("wrong-key", live)),
		sign(f, jwt.SigningMethodHS384, testKey, at("hs384", live)),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, at("none", live)),
		"e30.e30.",
		"..",
		"garbage",
		"\x00\xff\xfe.\x80.\x01",
	}
	for _, tok := range tokens {
		f.Add("Bearer "+tok, "")
		f.Add("", jwtguard.DefaultCookieName+"="+tok)
		f.Add("Basic x", "a=b; "+jwtguard.DefaultCookieName+"=\""+tok+"\"")
		f.Add("Bearer "+tok+"\nBearer "+tok, "")
	}
	f.Add("", "")
	f.Add("Bearer", "token=")

	f.Fuzz(func(t *testing.T, authorization, cookie string) {
		synctest.Test(t, func(t *testing.T) {
			g := newGuardRevoking(t, revoked, revokedNoJTI)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if authorization != "" {
				r.Header["Authorization"] = strings.Split(authorization, "\n")
			}
			if cookie != "" {
				r.Header["Cookie"] = []string{cookie}
			}
			passed := false
			h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true }))
			res := serve(h, r)
			if passed || res.code != http.StatusUnauthorized {
				t.Fatalf("Authorization %q, Cookie %q: passed=%v, status %d; want 401", authorization, cookie, passed, res.code)
			}
			switch res.challenge {
			case challengeMissing, challengeInvalid, challengeRevoked:
			default:
				t.Fatalf("WWW-Authenticate %q", res.challenge)
			}
		})
	})
}
