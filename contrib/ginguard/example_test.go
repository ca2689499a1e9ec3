package ginguard_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/contrib/ginguard"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A gin API whose routes need a token that is not logged out, with a
// logout route that revokes it.
func Example() {
	store := memorystore.New()
	defer store.Close()
	secret := []byte("an HS256 key of at least 32 bytes")
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return secret, nil },
		jwtguard.WithAlgorithms("HS256"))
	if err != nil {
		panic(err)
	}

	r := gin.New()
	api := r.Group("/", ginguard.Middleware(guard))
	api.GET("/me", func(c *gin.Context) {
		claims, _ := ginguard.ClaimsFromContext(c)
		c.String(http.StatusOK, "hello %s", claims["sub"])
	})
	api.POST("/logout", ginguard.LogoutHandler(guard))
	srv := httptest.NewServer(r)
	defer srv.Close()

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "jti": "8d2f0c4e", "exp": time.Now().Add(15 * time.Minute).Unix(),
	}).SignedString(secret)
	call := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, body)))
	}
	call("GET", "/me")
	call("POST", "/logout")
	call("GET", "/me")
	// Output:
	// GET /me: 200 hello alice
	// POST /logout: 204
	// GET /me: 401 Unauthorized
}
