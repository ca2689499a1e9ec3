package jwtguard_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// The outage a real deployment meets: the Redis behind the blocklist dies.
// Requests fail closed (503) by default, pass with fail-open, and both
// Guards answer normally again once Redis is back, with no stale answer
// left behind.
func TestRedisOutage(t *testing.T) {
	srv := testserver.Redis(t)
	client := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client, redisstore.WithPrefix("jwtguard-test:"))

	var reported atomic.Int32
	closed := newGuard(t, store).Middleware(whoami)
	open := newGuard(t, store, jwtguard.WithFailOpen(func(*http.Request, error) { reported.Add(1) })).Middleware(whoami)
	logout := newGuard(t, store).LogoutHandler()

	token := hs256(t, claims("redis-outage"))
	loggedOut := hs256(t, claims("redis-logged-out"))
	if res := serve(logout, bearerRequest("POST", loggedOut)); res.code != http.StatusNoContent {
		t.Fatalf("logout: %d", res.code)
	}
	check := func(when string, h http.Handler, tok string, want int) {
		t.Helper()
		if res := serve(h, bearerRequest("GET", tok)); res.code != want {
			t.Errorf("%s: %d; want %d", when, res.code, want)
		}
	}
	check("up, fail-closed", closed, token, 200)
	check("up, logged out", closed, loggedOut, 401)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	check("down, fail-closed", closed, token, http.StatusServiceUnavailable)
	check("down, fail-open", open, token, 200)
	if reported.Load() == 0 {
		t.Error("fail-open did not report the store's error")
	}
	if res := serve(logout, bearerRequest("POST", token)); res.code != http.StatusServiceUnavailable {
		t.Errorf("logout with Redis down: %d; want 503", res.code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check("back, fail-closed", closed, token, 200)
	check("back, fail-open", open, token, 200)
}
