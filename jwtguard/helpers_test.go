package jwtguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	wrongKey = []byte("fedcba9876543210fedcba9876543210")
)

func keyFunc(*jwt.Token) (any, error) { return testKey, nil }

// claims returns valid claims for a token that lives for an hour.
func claims(jti string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "alice",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if jti != "" {
		c["jti"] = jti
	}
	return c
}

func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// hs256 signs c with the test key.
func hs256(t testing.TB, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testKey, c) }

func newMemory(t testing.TB) *memorystore.Store {
	t.Helper()
	s := memorystore.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newGuard(t testing.TB, store blocklist.Store, opts ...jwtguard.Option) *jwtguard.Guard {
	t.Helper()
	opts = append([]jwtguard.Option{jwtguard.WithAlgorithms("HS256")}, opts...)
	g, err := jwtguard.New(store, keyFunc, opts...)
	if err != nil {
		t.Fatalf("jwtguard.New: %v", err)
	}
	return g
}

// whoami answers 200 with the subject of the token in the context.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := jwtguard.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims in context", http.StatusInternalServerError)
		return
	}
	sub, _ := c.GetSubject()
	io.WriteString(w, sub)
})

type response struct {
	code      int
	challenge string
	body      string
	header    http.Header
}

func serve(h http.Handler, r *http.Request) response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return response{
		code:      res.StatusCode,
		challenge: res.Header.Get("WWW-Authenticate"),
		body:      string(body),
		header:    res.Header,
	}
}

func bearerRequest(method, token string) *http.Request {
	r := httptest.NewRequest(method, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func cookieRequest(method, token string) *http.Request {
	r := httptest.NewRequest(method, "/", nil)
	r.AddCookie(&http.Cookie{Name: jwtguard.DefaultCookieName, Value: token})
	return r
}

func formRequest(form string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

const (
	challengeMissing = `Bearer`
	challengeInvalid = `Bearer error="invalid_token"`
	challengeRevoked = `Bearer error="invalid_token", error_description="token revoked"`
)

// withBearer sets r's bearer token.
func withBearer(r *http.Request, token string) *http.Request {
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// asCaller serves h to requests that carry caller as their bearer token,
// unless they carry an Authorization header already.
func asCaller(h http.Handler, caller string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r = withBearer(r.Clone(r.Context()), caller)
		}
		h.ServeHTTP(w, r)
	})
}
