package ginguard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/contrib/ginguard"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func init() { gin.SetMode(gin.ReleaseMode) } // no debug banner in test output

var key = []byte("an HS256 key of at least 32 bytes")

func newGuard(t *testing.T, store blocklist.Store, opts ...jwtguard.Option) *jwtguard.Guard {
	t.Helper()
	g, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		append([]jwtguard.Option{jwtguard.WithAlgorithms("HS256")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func token(t *testing.T, jti string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "jti": jti, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server serves a gin engine with g over a real HTTP server: GET /me and
// POST /write behind the middleware, POST /logout behind it too, and POST
// /logout-alone without it. reached counts the handler calls behind the
// middleware.
func server(t *testing.T, g *jwtguard.Guard) (url string, reached *atomic.Int64) {
	t.Helper()
	reached = new(atomic.Int64)
	r := gin.New()
	authed := r.Group("/", ginguard.Middleware(g))
	me := func(c *gin.Context) {
		reached.Add(1)
		claims, ok := ginguard.ClaimsFromContext(c)
		t2, ok2 := jwtguard.TokenFromContext(c.Request.Context())
		if !ok || !ok2 {
			c.String(http.StatusInternalServerError, "no token in the contexts")
			return
		}
		sub, _ := claims.GetSubject()
		c.String(http.StatusOK, sub+" "+t2.ID)
	}
	authed.GET("/me", me)
	authed.POST("/write", me)
	authed.POST("/logout", ginguard.LogoutHandler(g))
	r.POST("/logout-alone", ginguard.LogoutHandler(g))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL, reached
}

type reply struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string, cookie string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: jwtguard.DefaultCookieName, Value: cookie})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, string(b)}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestMiddleware(t *testing.T) {
	store := memorystore.New()
	t.Cleanup(func() { store.Close() })
	g := newGuard(t, store)
	url, reached := server(t, g)
	valid, revoked := token(t, "valid"), token(t, "revoked")
	if err := g.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	evil := map[string]string{"Origin": "https://evil.example"}

	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		cookie             string
		code               int
		challenge, body    string
	}{
		{"bearer", "GET", "/me", bearer(valid), "", 200, "", "alice valid"},
		{"cookie", "GET", "/me", nil, valid, 200, "", "alice valid"},
		{"cookie POST, same origin", "POST", "/write", map[string]string{"Sec-Fetch-Site": "same-origin"}, valid, 200, "", "alice valid"},
		{"bearer POST from another site", "POST", "/write", map[string]string{"Authorization": "Bearer " + valid, "Origin": "https://evil.example"}, "", 200, "", "alice valid"},
		{"no token", "GET", "/me", nil, "", 401, "Bearer", ""},
		{"not a JWT", "GET", "/me", bearer("abc"), "", 401, `Bearer error="invalid_token"`, ""},
		{"revoked", "GET", "/me", bearer(revoked), "", 401, `Bearer error="invalid_token", error_description="token revoked"`, ""},
		{"cookie POST from another site", "POST", "/write", evil, valid, 403, "", ""},
		{"cookie logout from another site", "POST", "/logout", evil, valid, 403, "", ""},
		{"cookie logout-alone from another site", "POST", "/logout-alone", map[string]string{"Sec-Fetch-Site": "cross-site"}, valid, 403, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			r := do(t, tc.method, url+tc.path, tc.header, tc.cookie)
			if r.code != tc.code || r.header.Get("WWW-Authenticate") != tc.challenge || (tc.body != "" && r.body != tc.body) {
				t.Errorf("%d %q %q; want %d %q %q", r.code, r.header.Get("WWW-Authenticate"), r.body, tc.code, tc.challenge, tc.body)
			}
			if ran := reached.Load() > before; ran != (tc.code == 200) {
				t.Errorf("handler behind the middleware ran = %v; want %v", ran, tc.code == 200)
			}
		})
	}

	// Logout behind the middleware, and without it; then the token is dead.
	for _, path := range []string{"/logout", "/logout-alone"} {
		tok := token(t, "logout"+path)
		r := do(t, "POST", url+path, nil, tok)
		if r.code != http.StatusNoContent || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("%s: %d, Set-Cookie %q; want 204 and the cookie cleared", path, r.code, r.header.Get("Set-Cookie"))
		}
		if r := do(t, "GET", url+"/me", bearer(tok), ""); r.code != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "token revoked") {
			t.Errorf("after %s: %d %q; want 401 revoked", path, r.code, r.header.Get("WWW-Authenticate"))
		}
	}
	if r := do(t, "POST", url+"/logout-alone", nil, ""); r.code != 401 {
		t.Errorf("logout without a token: %d; want 401", r.code)
	}
}

func TestGuardHandlers(t *testing.T) {
	down := memorystore.New()
	down.Close()
	g := newGuard(t, down,
		jwtguard.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token"})
		}),
		jwtguard.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
	url, reached := server(t, g)
	if r := do(t, "GET", url+"/me", bearer("abc"), ""); r.code != 401 || strings.TrimSpace(r.body) != `{"error":"invalid_token"}` || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("invalid token: %d %q %q; want the unauthorized handler's JSON and the challenge", r.code, r.body, r.header.Get("WWW-Authenticate"))
	}
	if r := do(t, "GET", url+"/me", bearer(token(t, "x")), ""); r.code != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("store down: %d; want the error handler's 503", r.code)
	}
	if r := do(t, "POST", url+"/logout", bearer(token(t, "y")), ""); r.code != 503 {
		t.Errorf("logout, store down: %d; want 503", r.code)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("handlers behind the middleware ran %d times; want 0", n)
	}
}

func TestNilGuard(t *testing.T) {
	for name, f := range map[string]func(){
		"Middleware":    func() { ginguard.Middleware(nil) },
		"LogoutHandler": func() { ginguard.LogoutHandler(nil) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s(nil) did not panic", name)
				}
			}()
			f()
		}()
	}
}
