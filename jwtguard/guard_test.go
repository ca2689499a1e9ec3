package jwtguard_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func TestNewRejectsBadConfig(t *testing.T) {
	store := newMemory(t)
	hs := jwtguard.WithAlgorithms("HS256")
	for _, tc := range []struct {
		name  string
		store blocklist.Store
		key   jwt.Keyfunc
		opts  []jwtguard.Option
		want  string
	}{
		{"nil store", nil, keyFunc, []jwtguard.Option{hs}, "store is nil"},
		{"nil key func", store, nil, []jwtguard.Option{hs}, "key function is nil"},
		{"no algorithms", store, keyFunc, nil, "WithAlgorithms is required"},
		{"empty algorithms", store, keyFunc, []jwtguard.Option{jwtguard.WithAlgorithms()}, "at least one algorithm"},
		{"none", store, keyFunc, []jwtguard.Option{jwtguard.WithAlgorithms("HS256", "none")}, `"none" is never accepted`},
		{"unknown alg", store, keyFunc, []jwtguard.Option{jwtguard.WithAlgorithms("HS257")}, `unknown algorithm "HS257"`},
		{"empty issuer", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithIssuer("")}, "issuer must not be empty"},
		{"no audience", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithAudience()}, "at least one audience"},
		{"empty audience", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithAudience("a", "")}, "audience must not be empty"},
		{"negative leeway", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithLeeway(-time.Second)}, "leeway must be from 0 to MaxLeeway"},
		{"leeway over MaxLeeway", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithLeeway(jwtguard.MaxLeeway + time.Millisecond)}, "leeway must be from 0 to MaxLeeway"},
		{"empty cookie name", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithCookie(http.Cookie{})}, "WithCookie"},
		{"bad cookie name", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithCookie(http.Cookie{Name: "a b"})}, "WithCookie"},
		{"bad realm", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithRealm(`a"b`)}, "WithRealm"},
		{"nil error handler", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithErrorHandler(nil)}, "WithErrorHandler(nil)"},
		{"nil fail-open report", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithFailOpen(nil)}, "WithFailOpen(nil)"},
		{"nil clock", store, keyFunc, []jwtguard.Option{hs, jwtguard.WithClock(nil)}, "WithClock(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := jwtguard.New(tc.store, tc.key, tc.opts...)
			if err == nil || g != nil {
				t.Fatalf("New = %v, %v; want nil and an error", g, err)
			}
			if !strings.HasPrefix(err.Error(), "jwtguard: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %q; want it to start with jwtguard: and contain %q", err, tc.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	h := g.Middleware(whoami)

	valid := hs256(t, claims("jti-1"))
	expired := claims("jti-2")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	noExp := claims("jti-3")
	delete(noExp, "exp")
	notYet := claims("jti-4")
	notYet["nbf"] = time.Now().Add(time.Hour).Unix()
	refreshToken := claims("jti-10") // minted by a Guard with sessions, seen by one without
	refreshToken[jwtguard.ClaimTokenUse] = jwtguard.TokenUseRefresh
	refreshToken[jwtguard.ClaimSessionID] = "s1"
	accessToken := claims("jti-11")
	accessToken[jwtguard.ClaimTokenUse] = jwtguard.TokenUseAccess
	issuedLater := claims("jti-9")
	issuedLater["iat"] = time.Now().Add(time.Hour).Unix()
	numericJTI := claims("")
	numericJTI["jti"] = 42
	longJTI := claims(strings.Repeat("j", blocklist.MaxIDLen+1))
	maxJTI := claims(strings.Repeat("j", blocklist.MaxIDLen))
	badExp := claims("jti-5")
	badExp["exp"] = "tomorrow"
	noneToken := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("jti-6"))

	for _, tc := range []struct {
		name      string
		req       *http.Request
		code      int
		challenge string
	}{
		{"no token", httptest.NewRequest("GET", "/", nil), 401, challengeMissing},
		{"bearer", bearerRequest("GET", valid), 200, ""},
		{"cookie", cookieRequest("GET", valid), 200, ""},
		{"lower-case scheme", header("authorization", "bearer "+valid), 200, ""},
		{"extra spaces", header("Authorization", "Bearer   "+valid+" "), 200, ""},
		{"max-length jti", bearerRequest("GET", hs256(t, maxJTI)), 200, ""},
		{"other scheme, no cookie", header("Authorization", "Basic ZGVtbzpkZW1v"), 401, challengeMissing},
		{"other scheme, cookie", withCookie(header("Authorization", "Basic ZGVtbzpkZW1v"), valid), 200, ""},
		{"bearer wins over cookie", withCookie(bearerRequest("GET", "garbage"), valid), 401, challengeInvalid},
		{"empty bearer", header("Authorization", "Bearer"), 401, challengeInvalid},
		{"blank bearer", header("Authorization", "Bearer    "), 401, challengeInvalid},
		{"two authorization headers", header("Authorization", "Bearer "+valid, "Bearer "+valid), 401, challengeInvalid},
		{"empty cookie", cookieRequest("GET", ""), 401, challengeMissing},
		{"garbage", bearerRequest("GET", "not.a.token"), 401, challengeInvalid},
		{"binary", header("Authorization", "Bearer \x00\xff\xfe.\x01\x02.\x80"), 401, challengeInvalid},
		{"garbage cookie", cookieRequest("GET", "e30.e30.e30"), 401, challengeInvalid},
		{"alg none", bearerRequest("GET", noneToken), 401, challengeInvalid},
		{"alg none, signature stripped", bearerRequest("GET", strings.TrimSuffix(noneToken, ".")+"."), 401, challengeInvalid},
		{"wrong key", bearerRequest("GET", sign(t, jwt.SigningMethodHS256, wrongKey, claims("jti-7"))), 401, challengeInvalid},
		{"algorithm not allowed", bearerRequest("GET", sign(t, jwt.SigningMethodHS384, testKey, claims("jti-8"))), 401, challengeInvalid},
		{"expired", bearerRequest("GET", hs256(t, expired)), 401, challengeInvalid},
		{"no exp", bearerRequest("GET", hs256(t, noExp)), 401, challengeInvalid},
		{"exp not a number", bearerRequest("GET", hs256(t, badExp)), 401, challengeInvalid},
		{"not yet valid", bearerRequest("GET", hs256(t, notYet)), 401, challengeInvalid},
		{"issued in the future", bearerRequest("GET", hs256(t, issuedLater)), 401, challengeInvalid},
		{"refresh token", bearerRequest("GET", hs256(t, refreshToken)), 401, challengeInvalid},
		{"access token", bearerRequest("GET", hs256(t, accessToken)), 200, ""},
		{"numeric jti", bearerRequest("GET", hs256(t, numericJTI)), 401, challengeInvalid},
		{"jti over MaxIDLen", bearerRequest("GET", hs256(t, longJTI)), 401, challengeInvalid},
		{"tampered payload", bearerRequest("GET", tamper(valid)), 401, challengeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, tc.req)
			if res.code != tc.code || res.challenge != tc.challenge {
				t.Fatalf("got %d %q; want %d %q (body %q)", res.code, res.challenge, tc.code, tc.challenge, res.body)
			}
			if tc.code == 200 && res.body != "alice" {
				t.Errorf("body %q; want the subject from the context", res.body)
			}
			if tc.code == 401 && res.body != "Unauthorized\n" {
				t.Errorf("401 body %q; want no detail", res.body)
			}
		})
	}
	if n := store.Len(); n != 0 {
		t.Errorf("the middleware stored %d entries; want none", n)
	}
}

func header(name string, values ...string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	for _, v := range values {
		r.Header.Add(name, v)
	}
	return r
}

func withCookie(r *http.Request, token string) *http.Request {
	r.AddCookie(&http.Cookie{Name: jwtguard.DefaultCookieName, Value: token})
	return r
}

// tamper changes the subject of a signed token, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestOptions(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store,
		jwtguard.WithIssuer("https://issuer.example"),
		jwtguard.WithAudience("api", "admin"),
		jwtguard.WithLeeway(30*time.Second),
		jwtguard.WithRealm("example"),
		jwtguard.WithCookie(http.Cookie{Name: "session"}),
	)
	h := g.Middleware(whoami)
	good := func() jwt.MapClaims {
		c := claims("")
		c["iss"] = "https://issuer.example"
		c["aud"] = []string{"web", "api"}
		return c
	}
	with := func(k string, v any) string {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return hs256(t, c)
	}
	sessionCookie := func(token string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "session", Value: token})
		return r
	}
	const realmInvalid = `Bearer realm="example", error="invalid_token"`
	for _, tc := range []struct {
		name      string
		req       *http.Request
		code      int
		challenge string
	}{
		{"all good", bearerRequest("GET", hs256(t, good())), 200, ""},
		{"named cookie", sessionCookie(hs256(t, good())), 200, ""},
		{"default cookie ignored", cookieRequest("GET", hs256(t, good())), 401, `Bearer realm="example"`},
		{"expired within leeway", bearerRequest("GET", with("exp", time.Now().Add(-10*time.Second).Unix())), 200, ""},
		{"expired beyond leeway", bearerRequest("GET", with("exp", time.Now().Add(-time.Minute).Unix())), 401, realmInvalid},
		{"issued within leeway", bearerRequest("GET", with("iat", time.Now().Add(10*time.Second).Unix())), 200, ""},
		{"issued beyond leeway", bearerRequest("GET", with("iat", time.Now().Add(time.Minute).Unix())), 401, realmInvalid},
		{"wrong issuer", bearerRequest("GET", with("iss", "https://evil.example")), 401, realmInvalid},
		{"no issuer", bearerRequest("GET", with("iss", nil)), 401, realmInvalid},
		{"wrong audience", bearerRequest("GET", with("aud", "web")), 401, realmInvalid},
		{"no audience", bearerRequest("GET", with("aud", nil)), 401, realmInvalid},
		{"audience as string", bearerRequest("GET", with("aud", "admin")), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, tc.req)
			if res.code != tc.code || res.challenge != tc.challenge {
				t.Fatalf("got %d %q; want %d %q", res.code, res.challenge, tc.code, tc.challenge)
			}
		})
	}

	// Logout revokes until exp plus MaxLeeway (not its own leeway, which
	// another Guard may exceed), and clears the named cookie.
	c := good()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c["exp"] = exp.Unix()
	c["jti"] = "leeway-jti"
	token := hs256(t, c)
	res := serve(g.Middleware(g.LogoutHandler()), sessionCookie(token))
	if res.code != http.StatusNoContent {
		t.Fatalf("logout: %d; want 204", res.code)
	}
	until, err := store.RevokedUntil(context.Background(), "leeway-jti")
	if err != nil || !until.Equal(exp.Add(jwtguard.MaxLeeway)) {
		t.Errorf("RevokedUntil = %v, %v; want exp+MaxLeeway %v", until, err, exp.Add(jwtguard.MaxLeeway))
	}
	cookies := (&http.Response{Header: res.header}).Cookies()
	if len(cookies) != 1 || cookies[0].Name != "session" || cookies[0].MaxAge >= 0 || cookies[0].Path != "/" {
		t.Errorf("logout cookies = %v; want session cleared on path /", cookies)
	}
}

func TestLogoutThenReplay(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	protected := g.Middleware(whoami)
	logout := g.Middleware(g.LogoutHandler())

	for _, tc := range []struct {
		name string
		req  func(method, token string) *http.Request
		jti  string
	}{
		{"bearer with jti", bearerRequest, "bearer-jti"},
		{"cookie with jti", cookieRequest, "cookie-jti"},
		{"bearer without jti", bearerRequest, ""},
		{"cookie without jti", cookieRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Tokens without jti differ only by their claims: name the
			// session in one.
			session := func(name string) string {
				c := claims(tc.jti)
				if tc.jti != "" {
					c["jti"] = tc.jti + name
				}
				c["session"] = tc.name + name
				return hs256(t, c)
			}
			token, other := session(""), session("-other")
			if res := serve(protected, tc.req("GET", token)); res.code != 200 {
				t.Fatalf("before logout: %d", res.code)
			}
			res := serve(logout, tc.req("POST", token))
			if res.code != http.StatusNoContent {
				t.Fatalf("logout: %d %q", res.code, res.body)
			}
			if sc := res.header.Get("Set-Cookie"); !strings.HasPrefix(sc, "token=;") || !strings.Contains(sc, "Max-Age=0") || !strings.Contains(sc, "HttpOnly") {
				t.Errorf("logout Set-Cookie %q; want the token cookie cleared", sc)
			}
			res = serve(protected, tc.req("GET", token))
			if res.code != 401 || res.challenge != challengeRevoked {
				t.Fatalf("replay: %d %q; want 401 %q", res.code, res.challenge, challengeRevoked)
			}
			if res := serve(logout, tc.req("POST", token)); res.code != 401 {
				t.Errorf("second logout: %d; want 401", res.code)
			}
			if res := serve(protected, tc.req("GET", other)); res.code != 200 {
				t.Errorf("other session after logout: %d; want 200", res.code)
			}
		})
	}
}

func TestTokenIDWithoutJTI(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	token := hs256(t, claims(""))
	parts := strings.Split(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sig)
	want := "sig:" + base64.RawURLEncoding.EncodeToString(sum[:])

	tok, err := g.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != want || !strings.HasPrefix(tok.ID, "sig:") {
		t.Fatalf("ID = %q; want %q", tok.ID, want)
	}
	if err := g.Revoke(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	if revoked, err := store.IsRevoked(context.Background(), want); !revoked || err != nil {
		t.Fatalf("IsRevoked(%q) = %v, %v after Revoke", want, revoked, err)
	}
}

// An ECDSA signature (r, s) has a twin (r, n-s) that verifies too. A token
// without jti must keep its id under that change, or a client could replay
// a revoked token with the twin signature.
func TestECDSASignatureTwinStaysRevoked(t *testing.T) {
	for _, tc := range []struct {
		method *jwt.SigningMethodECDSA
		curve  elliptic.Curve
	}{
		{jwt.SigningMethodES256, elliptic.P256()},
		{jwt.SigningMethodES384, elliptic.P384()},
		{jwt.SigningMethodES512, elliptic.P521()},
	} {
		t.Run(tc.method.Alg(), func(t *testing.T) {
			priv, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			store := newMemory(t)
			g, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return &priv.PublicKey, nil },
				jwtguard.WithAlgorithms(tc.method.Alg()))
			if err != nil {
				t.Fatal(err)
			}
			token := sign(t, tc.method, priv, claims(""))
			twin := twinSignature(t, token, tc.method.KeySize, tc.curve)
			if _, err := g.Verify(context.Background(), twin); err != nil {
				t.Fatalf("the twin signature does not verify (%v): the test proves nothing", err)
			}
			if err := g.Revoke(context.Background(), token); err != nil {
				t.Fatal(err)
			}
			for name, tok := range map[string]string{"original": token, "twin": twin} {
				if _, err := g.Verify(context.Background(), tok); !errors.Is(err, jwtguard.ErrRevoked) {
					t.Errorf("%s after revocation: %v; want ErrRevoked", name, err)
				}
			}
		})
	}
}

func twinSignature(t *testing.T, token string, size int, curve elliptic.Curve) string {
	t.Helper()
	parts := strings.Split(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 2*size {
		t.Fatalf("signature: %d bytes, %v", len(sig), err)
	}
	s := new(big.Int).SetBytes(sig[size:])
	s.Sub(curve.Params().N, s)
	s.FillBytes(sig[size:])
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func TestRequestNotModified(t *testing.T) {
	g := newGuard(t, newMemory(t))
	token := hs256(t, claims("jti"))
	var inner *http.Request
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = r }))
	outer := bearerRequest("GET", token)
	ctx := outer.Context()
	serve(h, outer)
	if inner == nil || inner == outer {
		t.Fatalf("next got %p, outer is %p; want a copy", inner, outer)
	}
	if outer.Context() != ctx {
		t.Error("the incoming request's context was replaced")
	}
	if _, ok := jwtguard.TokenFromContext(outer.Context()); ok {
		t.Error("the incoming request's context holds a token")
	}
	tok, ok := jwtguard.TokenFromContext(inner.Context())
	if !ok || tok.Raw != token || tok.ID != "jti" || tok.Claims["sub"] != "alice" {
		t.Fatalf("TokenFromContext = %+v, %v", tok, ok)
	}
	if want := time.Unix(int64(claims("")["exp"].(int64)), 0); tok.ExpiresAt.Sub(want).Abs() > 2*time.Second {
		t.Errorf("ExpiresAt = %v; want about %v", tok.ExpiresAt, want)
	}
	if _, ok := jwtguard.ClaimsFromContext(context.Background()); ok {
		t.Error("ClaimsFromContext of an empty context reports a token")
	}
}

func TestVerifyAndRevokeErrors(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	ctx := context.Background()
	expired := claims("old")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()

	if _, err := g.Verify(ctx, "garbage"); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Verify(garbage) = %v; want ErrInvalidToken", err)
	}
	if err := g.Revoke(ctx, "garbage"); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Revoke(garbage) = %v; want ErrInvalidToken", err)
	}
	if err := g.Revoke(ctx, hs256(t, expired)); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Revoke(expired) = %v; want ErrInvalidToken", err)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("%d entries stored for invalid tokens", n)
	}
	token := hs256(t, claims("twice"))
	for i := 0; i < 2; i++ {
		if err := g.Revoke(ctx, token); err != nil {
			t.Fatalf("Revoke #%d: %v", i+1, err)
		}
	}
	if _, err := g.Verify(ctx, token); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Errorf("Verify(revoked) = %v; want ErrRevoked", err)
	}
}

func TestLogoutWithoutMiddleware(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	token := hs256(t, claims("plain-logout"))

	rec := httptest.NewRecorder()
	if err := g.Logout(rec, httptest.NewRequest("POST", "/", nil)); !errors.Is(err, jwtguard.ErrNoToken) {
		t.Errorf("Logout without token = %v; want ErrNoToken", err)
	}
	if err := g.Logout(rec, bearerRequest("POST", "x.y.z")); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Logout with garbage = %v; want ErrInvalidToken", err)
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Error("a failed Logout cleared the cookie")
	}
	if err := g.Logout(rec, cookieRequest("POST", token)); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if err := g.Logout(httptest.NewRecorder(), cookieRequest("POST", token)); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Errorf("second Logout = %v; want ErrRevoked", err)
	}
	if res := serve(g.LogoutHandler(), httptest.NewRequest("POST", "/", nil)); res.code != 401 || res.challenge != challengeMissing {
		t.Errorf("LogoutHandler without token: %d %q", res.code, res.challenge)
	}
}

func TestSetCookie(t *testing.T) {
	g := newGuard(t, newMemory(t), jwtguard.WithCookie(http.Cookie{
		Name: "at", Path: "/api", Domain: "example.com", Secure: true, SameSite: http.SameSiteStrictMode,
	}))
	rec := httptest.NewRecorder()
	exp := time.Now().Add(time.Hour)
	g.SetCookie(rec, "a.b.c", exp)
	got := rec.Result().Header.Get("Set-Cookie")
	for _, want := range []string{"at=a.b.c", "Path=/api", "Domain=example.com", "HttpOnly", "Secure", "SameSite=Strict", "Expires="} {
		if !strings.Contains(got, want) {
			t.Errorf("Set-Cookie %q lacks %q", got, want)
		}
	}
	g = newGuard(t, newMemory(t))
	rec = httptest.NewRecorder()
	g.SetCookie(rec, "a.b.c", exp)
	if got := rec.Result().Header.Get("Set-Cookie"); !strings.Contains(got, "token=a.b.c") || !strings.Contains(got, "Path=/") ||
		!strings.Contains(got, "SameSite=Lax") || !strings.Contains(got, "HttpOnly") {
		t.Errorf("default Set-Cookie %q", got)
	}
}

func TestRevocationHandler(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	caller := hs256(t, claims("caller")) // alice's
	h := asCaller(g.RevocationHandler(), caller)
	expired := claims("expired")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()

	for _, tc := range []struct {
		name string
		req  *http.Request
		code int
	}{
		{"GET", httptest.NewRequest("GET", "/revoke?token=x", nil), 405},
		{"no token", formRequest("token_type_hint=access_token"), 400},
		{"empty token", formRequest("token="), 400},
		{"two tokens", formRequest("token=a&token=b"), 400},
		{"token in query only", httptest.NewRequest("POST", "/revoke?token="+hs256(t, claims("query")), nil), 400},
		{"JSON body", func() *http.Request {
			r := httptest.NewRequest("POST", "/revoke", strings.NewReader(`{"token":"x"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 400},
		{"garbage", formRequest("token=garbage"), 200},
		{"wrong key", formRequest("token=" + sign(t, jwt.SigningMethodHS256, wrongKey, claims("wrong-key"))), 200},
		{"expired", formRequest("token=" + hs256(t, expired)), 200},
		{"unknown hint", formRequest("token=garbage&token_type_hint=refresh_token"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, tc.req)
			if res.code != tc.code {
				t.Fatalf("%d %q; want %d", res.code, res.body, tc.code)
			}
			if tc.code == 200 && res.body != "" {
				t.Errorf("body %q; want empty", res.body)
			}
		})
	}
	if n := store.Len(); n != 0 {
		t.Fatalf("%d entries stored for tokens that do not verify", n)
	}

	token := hs256(t, claims("rfc7009"))
	for i := 0; i < 2; i++ {
		res := serve(h, formRequest("token="+token+"&token_type_hint=access_token"))
		if res.code != 200 || res.body != "" {
			t.Fatalf("revoke #%d: %d %q; want 200 and no body", i+1, res.code, res.body)
		}
	}
	if res := serve(g.Middleware(whoami), bearerRequest("GET", token)); res.code != 401 || res.challenge != challengeRevoked {
		t.Errorf("after RFC 7009 revocation: %d %q", res.code, res.challenge)
	}
}

// failingStore is what a Store whose backend is down looks like: a closed
// memorystore, which answers every call with blocklist.ErrClosed.
func failingStore(t *testing.T) blocklist.Store {
	s := memorystore.New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFailClosed(t *testing.T) {
	var got atomic.Pointer[error]
	g := newGuard(t, failingStore(t), jwtguard.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got.Store(&err)
		http.Error(w, "try later", http.StatusServiceUnavailable)
	}))
	token := hs256(t, claims("jti"))
	res := serve(g.Middleware(whoami), bearerRequest("GET", token))
	if res.code != http.StatusServiceUnavailable || res.body != "try later\n" {
		t.Fatalf("store down: %d %q; want the error handler's 503", res.code, res.body)
	}
	if p := got.Load(); p == nil || !errors.Is(*p, blocklist.ErrClosed) || !strings.HasPrefix((*p).Error(), "jwtguard: ") {
		t.Fatalf("error handler got %v; want a jwtguard error wrapping the store's", p)
	}
	// The checks that need no store still answer 401, and never reach the
	// error handler: a jti too long for any store is an invalid token.
	got.Store(nil)
	for name, tok := range map[string]string{
		"garbage":           "garbage",
		"jti over MaxIDLen": hs256(t, claims(strings.Repeat("x", 5<<10))),
	} {
		if res := serve(g.Middleware(whoami), bearerRequest("GET", tok)); res.code != 401 {
			t.Errorf("%s with store down: %d; want 401", name, res.code)
		}
	}
	if got.Load() != nil {
		t.Error("the error handler was called for an invalid token")
	}
	// Logout and RFC 7009 fail closed too: the revocation was not recorded.
	res = serve(g.Middleware(g.LogoutHandler()), bearerRequest("POST", token))
	if res.code != http.StatusServiceUnavailable {
		t.Errorf("logout with store down: %d; want 503", res.code)
	}
	if res.header.Get("Set-Cookie") != "" {
		t.Error("a failed logout cleared the cookie")
	}
	// The caller's token was checked by the middleware (failing open).
	callerCtx := func(r *http.Request) *http.Request {
		tok, err := jwtguard.ParseUnverified(token)
		if err != nil {
			t.Fatal(err)
		}
		return r.WithContext(jwtguard.NewContext(r.Context(), tok))
	}
	if res := serve(g.RevocationHandler(), callerCtx(formRequest("token="+token))); res.code != http.StatusServiceUnavailable {
		t.Errorf("RFC 7009 with store down: %d; want 503", res.code)
	}
	if res := serve(g.RevocationHandler(), callerCtx(formRequest("token=garbage"))); res.code != 200 {
		t.Errorf("RFC 7009 of garbage with store down: %d; want 200", res.code)
	}
	// Without the middleware, the caller cannot be checked.
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token=garbage"), token)); res.code != http.StatusServiceUnavailable {
		t.Errorf("RFC 7009 with store down, caller unchecked: %d; want 503", res.code)
	}
}

func TestDefaultErrorHandler(t *testing.T) {
	g := newGuard(t, failingStore(t))
	res := serve(g.Middleware(whoami), bearerRequest("GET", hs256(t, claims("jti"))))
	if res.code != http.StatusServiceUnavailable || res.body != "Service Unavailable\n" {
		t.Fatalf("store down: %d %q; want a bare 503", res.code, res.body)
	}
}

func TestFailOpen(t *testing.T) {
	var reported atomic.Int32
	g := newGuard(t, failingStore(t),
		jwtguard.WithFailOpen(func(r *http.Request, err error) {
			if errors.Is(err, blocklist.ErrClosed) {
				reported.Add(1)
			}
		}),
		jwtguard.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "closed", http.StatusServiceUnavailable)
		}))
	res := serve(g.Middleware(whoami), bearerRequest("GET", hs256(t, claims("jti"))))
	if res.code != 200 || res.body != "alice" {
		t.Fatalf("fail-open with store down: %d %q; want the request through", res.code, res.body)
	}
	if reported.Load() != 1 {
		t.Errorf("onError called %d times with the store's error; want 1", reported.Load())
	}
	// Only valid tokens pass.
	if res := serve(g.Middleware(whoami), bearerRequest("GET", "garbage")); res.code != 401 {
		t.Errorf("fail-open, garbage: %d; want 401", res.code)
	}
	// A logout is never reported done when it was not recorded.
	if res := serve(g.Middleware(g.LogoutHandler()), bearerRequest("POST", hs256(t, claims("jti")))); res.code != 503 {
		t.Errorf("fail-open logout with store down: %d; want 503", res.code)
	}
}
