package jwtguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
// The Guard and the Store read a fixed clock, so the seeds are the same
// tokens in every run: the corpus a previous run kept holds no validly
// signed token that this run has not revoked.
func FuzzMiddleware(f *testing.F) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := memorystore.New(memorystore.WithClock(clock))
	f.Cleanup(func() { store.Close() })
	g := newGuard(f, store, jwtguard.WithLeeway(time.Second), jwtguard.WithClock(clock))
	ctx := context.Background()
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
	for _, tok := range []string{revoked, revokedNoJTI} {
		if err := g.Revoke(ctx, tok); err != nil {
			f.Fatal(err)
		}
	}
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
}
