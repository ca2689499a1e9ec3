package jwtguard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// The whole story: a token works, its holder logs out, and the same token,
// replayed, is refused.
func Example() {
	secret := []byte("an HS256 key of at least 32 bytes!")
	store := memorystore.New()
	defer store.Close()

	guard, err := jwtguard.New(store,
		func(*jwt.Token) (any, error) { return secret, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithIssuer("example"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("GET /me", guard.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := jwtguard.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", claims["sub"])
	})))
	mux.Handle("POST /logout", guard.Middleware(guard.LogoutHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "example",
		"sub": "alice",
		"jti": "8d2f0c4e",
		"exp": time.Now().Add(15 * time.Minute).Unix(),
	}).SignedString(secret)

	call := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, body)))
		if c := res.Header.Get("WWW-Authenticate"); c != "" {
			fmt.Println("  WWW-Authenticate:", c)
		}
	}
	call("GET", "/me")
	call("POST", "/logout")
	call("GET", "/me")
	// Output:
	// GET /me: 200 hello alice
	// POST /logout: 204
	// GET /me: 401 Unauthorized
	//   WWW-Authenticate: Bearer error="invalid_token", error_description="token revoked"
}

// An RFC 7009 endpoint, mounted behind the middleware so that only a holder
// of a valid token may revoke. It answers 200 whether or not the token it
// was given was valid.
func ExampleGuard_RevocationHandler() {
	secret := []byte("an HS256 key of at least 32 bytes!")
	store := memorystore.New()
	defer store.Close()
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return secret, nil },
		jwtguard.WithAlgorithms("HS256"))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(guard.Middleware(guard.RevocationHandler()))
	defer srv.Close()

	sign := func(sub, jti string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": sub, "jti": jti, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		return s
	}
	// By default a caller may revoke the tokens of its own subject only.
	caller, stolen, bobs := sign("alice", "caller"), sign("alice", "stolen"), sign("bob", "bobs")

	revoke := func(token string) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(url.Values{
			"token": {token}, "token_type_hint": {"access_token"},
		}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+caller)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	revoke(stolen)
	revoke("not-a-token")
	revoke(bobs)

	_, err = guard.Verify(context.Background(), stolen)
	fmt.Println(err)
	_, err = guard.Verify(context.Background(), bobs)
	fmt.Println(err)
	// Output:
	// 200
	// 200
	// 400
	// jwtguard: token revoked
	// <nil>
}
