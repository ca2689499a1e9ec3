package jwtguard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A JSON API answers its 401s in JSON; the RFC 6750 challenge is set
// before the handler runs.
func ExampleWithUnauthorizedHandler() {
	store := memorystore.New()
	defer store.Close()
	key := []byte("an HS256 key of at least 32 bytes")
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			code := "invalid_token"
			if errors.Is(err, jwtguard.ErrNoToken) {
				code = "token_required"
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": code})
		}))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(guard.Middleware(http.NotFoundHandler()))
	defer srv.Close()

	res, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, res.Header.Get("WWW-Authenticate"))
	fmt.Print(string(body))
	// Output:
	// 401 Bearer
	// {"error":"token_required"}
}

// json.Marshal of a Pair is the OAuth 2.0 token response a login endpoint
// answers with.
func ExamplePair_MarshalJSON() {
	store := memorystore.New()
	defer store.Close()
	key := []byte("an HS256 key of at least 32 bytes")
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithClock(func() time.Time { return now }),
		jwtguard.WithSessions(jwtguard.Sessions{SigningMethod: jwt.SigningMethodHS256, SigningKey: key,
			AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour}))
	if err != nil {
		panic(err)
	}
	pair, err := guard.NewSession("alice", nil) // after checking alice's password
	if err != nil {
		panic(err)
	}
	body, _ := json.Marshal(pair)
	var m map[string]any
	json.Unmarshal(body, &m)
	fmt.Println(m["token_type"], m["expires_in"], m["refresh_expires_in"], m["access_token"] == pair.AccessToken)
	// Output:
	// Bearer 900 86400 true
}
