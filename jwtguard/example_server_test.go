package jwtguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// README: begin minimal server

// newAPI is a minimal real server: login that mints a session, refresh,
// a protected route, logout; JSON answers for 401 and for a Store failure;
// a deadline on every request, so a Store that hangs costs 503, not a stuck
// request; the Guard's logs through the server's logger.
func newAPI(store blocklist.Store, key []byte, log *slog.Logger,
	checkPassword func(ctx context.Context, user, password string) (bool, error)) (http.Handler, error) {
	jsonError := func(code int, msg string) jwtguard.ErrorHandler {
		return func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
	}
	crossOrigin := http.NewCrossOriginProtection() // the Guard's and the login's
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithIssuer("my-api"),
		jwtguard.WithAudience("my-api"),
		jwtguard.WithSessions(jwtguard.Sessions{SigningMethod: jwt.SigningMethodHS256, SigningKey: key}),
		jwtguard.WithUnauthorizedHandler(jsonError(http.StatusUnauthorized, "invalid_token")), // WWW-Authenticate is set already
		jwtguard.WithErrorHandler(jsonError(http.StatusServiceUnavailable, "temporarily_unavailable")),
		jwtguard.WithCrossOriginProtection(crossOrigin),
		jwtguard.WithLogger(log),
	)
	if err != nil {
		return nil, err
	}
	writePair := func(w http.ResponseWriter, p *jwtguard.Pair) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(p) // {"access_token", "token_type", "expires_in", "refresh_token", ...}
	}

	mux := http.NewServeMux()
	mux.Handle("POST /login", crossOrigin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct{ Username, Password string }
		if json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&c) != nil {
			jsonError(http.StatusBadRequest, "invalid_request")(w, r, nil)
			return
		}
		// Throttle failed attempts per username and per client here (see
		// the demo): checkPassword is what an attacker guesses against.
		ok, err := checkPassword(r.Context(), c.Username, c.Password)
		if err != nil || !ok {
			jsonError(http.StatusBadRequest, "invalid_grant")(w, r, err) // RFC 6749 section 5.2
			return
		}
		p, err := guard.NewSession(c.Username, nil)
		if err != nil {
			jsonError(http.StatusInternalServerError, "server_error")(w, r, err)
			return
		}
		writePair(w, p)
	})))
	mux.Handle("POST /refresh", crossOrigin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body)
		p, err := guard.Refresh(r.Context(), body.RefreshToken)
		switch {
		case errors.Is(err, jwtguard.ErrInvalidToken), errors.Is(err, jwtguard.ErrRevoked):
			jsonError(http.StatusBadRequest, "invalid_grant")(w, r, err) // a replay ends the session
		case err != nil:
			jsonError(http.StatusServiceUnavailable, "temporarily_unavailable")(w, r, err)
		default:
			writePair(w, p)
		}
	})))
	mux.Handle("GET /me", guard.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := jwtguard.ClaimsFromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"sub": claims["sub"]})
	})))
	mux.Handle("POST /logout", guard.Middleware(guard.LogoutHandler()))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second) // every Store call inherits it
		defer cancel()
		mux.ServeHTTP(w, r.WithContext(ctx))
	}), nil
}

// serveAPI runs newAPI over Redis, with a cache in front, until the server
// fails.
func serveAPI(key []byte, checkPassword func(ctx context.Context, user, password string) (bool, error)) error {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379",
		DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	defer client.Close()
	store, err := cached.New(redisstore.New(client)) // revocations pushed by the other instances
	if err != nil {
		return err
	}
	defer store.Close()
	api, err := newAPI(store, key, slog.Default(), checkPassword)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: ":8080", Handler: api,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// README: end minimal server

var _ = serveAPI // compiled, so the README's code cannot go stale; not run

// The README's minimal real server, over memorystore: a wrong password, a
// login, a call, a logout, the same call again, and a call while the Store
// is down.
func Example_minimalServer() {
	key := []byte("an HS256 key of at least 32 bytes")
	checkPassword := func(_ context.Context, user, password string) (bool, error) {
		return user == "alice" && password == "correct horse battery staple", nil // a hash compare in real life
	}
	store := memorystore.New()
	api, err := newAPI(store, key, slog.New(slog.DiscardHandler), checkPassword)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	// call prints the answer, without the tokens of a login, and returns it.
	call := func(method, path, body, token string) []byte {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		shown := strings.TrimSpace(string(b))
		if path == "/login" && res.StatusCode == http.StatusOK {
			shown = "(a token response)"
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintln(method, path, res.StatusCode, shown, res.Header.Get("WWW-Authenticate"))))
		return b
	}
	call("POST", "/login", `{"username":"alice","password":"guess"}`, "")
	var pair jwtguard.Pair
	if err := json.Unmarshal(call("POST", "/login", `{"username":"alice","password":"correct horse battery staple"}`, ""), &pair); err != nil {
		panic(err)
	}
	call("GET", "/me", "", pair.AccessToken)
	call("POST", "/logout", "", pair.AccessToken)
	call("GET", "/me", "", pair.AccessToken)

	json.Unmarshal(call("POST", "/login", `{"username":"alice","password":"correct horse battery staple"}`, ""), &pair)
	store.Close() // the Store goes down
	call("GET", "/me", "", pair.AccessToken)
	// Output:
	// POST /login 400 {"error":"invalid_grant"}
	// POST /login 200 (a token response)
	// GET /me 200 {"sub":"alice"}
	// POST /logout 204
	// GET /me 401 {"error":"invalid_token"} Bearer error="invalid_token", error_description="token revoked"
	// POST /login 200 (a token response)
	// GET /me 503 {"error":"temporarily_unavailable"}
}
