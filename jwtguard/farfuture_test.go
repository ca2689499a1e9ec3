package jwtguard_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// Issue 14, case 2: a token with a far-future exp, logged out, must stay
// out. With exp 18446744073709552 Redis stored an already expired key (the
// milliseconds wrapped): logout answered 204 and the replay 200. Now every
// exp the Guard accepts (up to the end of the year 9999) is stored on every
// backend, and a later one is refused as a token, at logout and at replay;
// no answer is ever 200 after a logout.
func TestFarFutureLogout(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	stores := map[string]func(t *testing.T) blocklist.Store{
		"memorystore": func(t *testing.T) blocklist.Store { return newMemory(t) },
		"redisstore": func(t *testing.T) blocklist.Store {
			return redisstore.New(redistest.Client(t, srv.Addr()), redisstore.WithPrefix(redistest.Prefix(t)))
		},
		"cached-redisstore": func(t *testing.T) blocklist.Store {
			next := redisstore.New(redistest.Client(t, srv.Addr()), redisstore.WithPrefix(redistest.Prefix(t)))
			c, err := cached.New(next)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
	iat := strconv.FormatInt(time.Now().Unix(), 10)
	exps := map[string]struct {
		exp        string
		wantLogout int
	}{
		"end of 9999":           {"253402300799.999", http.StatusNoContent},
		"year 2262+":            {"9223372037", http.StatusNoContent},
		"year 2106 (uint32)":    {"4294967296", http.StatusNoContent},
		"ms wrap to 1970":       {"18446744073709552", http.StatusUnauthorized},
		"negative milliseconds": {"10000000000000000", http.StatusUnauthorized},
		"2^62 seconds":          {"4611686018427387904", http.StatusUnauthorized},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newGuard(t, newStore(t))
			logout, api := g.LogoutHandler(), g.Middleware(whoami)
			for what, c := range exps {
				tok := rawToken(t, hs256Header, `{"sub":"alice","jti":"far `+what+`","iat":`+iat+`,"exp":`+c.exp+`}`)
				if res := serve(logout, bearerRequest("POST", tok)); res.code != c.wantLogout {
					t.Errorf("exp %s (%s): logout answered %d, want %d", c.exp, what, res.code, c.wantLogout)
				}
				if res := serve(api, bearerRequest("GET", tok)); res.code != http.StatusUnauthorized {
					t.Errorf("exp %s (%s): the replay after logout answered %d, want 401", c.exp, what, res.code)
				}
			}
		})
	}
}

// A token response whose lifetimes overflow a time.Duration saturates: the
// expiry is far in the future, never wrapped into the past.
func TestPairHugeLifetime(t *testing.T) {
	t.Parallel()
	for _, seconds := range []string{"9223372037", "9223372036854775807", "18446744073"} {
		var p jwtguard.Pair
		body := `{"access_token":"a","token_type":"Bearer","expires_in":` + seconds + `,"refresh_token":"r","refresh_expires_in":` + seconds + `}`
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("expires_in %s: %v", seconds, err)
		}
		min := time.Now().AddDate(200, 0, 0)
		if p.AccessExpiresAt.Before(min) || p.RefreshExpiresAt.Before(min) {
			t.Errorf("expires_in %s: AccessExpiresAt %s, RefreshExpiresAt %s; want both after %s",
				seconds, p.AccessExpiresAt, p.RefreshExpiresAt, min)
		}
	}
}
