package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// loginPair logs in as demo/demo and returns the access and refresh tokens.
func loginPair(t *testing.T, base string) (access, refresh string) {
	t.Helper()
	r := do(t, nil, "POST", base+"/login", `{"username":"demo","password":"demo"}`, "", "")
	return pairOf(t, "login", r)
}

func pairOf(t *testing.T, what string, r reply) (access, refresh string) {
	t.Helper()
	var tr tokenResponse
	if r.code != 200 || json.Unmarshal([]byte(r.body), &tr) != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
		t.Fatalf("%s: %d %s; want 200 and a pair", what, r.code, r.body)
	}
	return tr.AccessToken, tr.RefreshToken
}

func refresh(t *testing.T, base, token string) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	return do(t, nil, "POST", base+"/refresh", string(body), "", "")
}

func wantMe(t *testing.T, base, access string, want int, why string) {
	t.Helper()
	if r := do(t, nil, "GET", base+"/me", "", access, ""); r.code != want {
		t.Errorf("/me: %d; want %d: %s", r.code, want, why)
	}
}

// The story: rotate twice, replay the first refresh token; log out
// everywhere; log in again.
func TestStorySessions(t *testing.T) {
	t.Parallel()
	for name, args := range map[string]func(t *testing.T) []string{
		"bolt": boltArgs,
		"redis+cache": func(t *testing.T) []string {
			return []string{"-store", "redis", "-redis-url", "redis://" + testserver.Redis(t).Addr() + "/0", "-cache", "-secret", testSecret}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := startDemo(t, nil, args(t)...)
			a1, r1 := loginPair(t, d.url)
			otherA, otherR := loginPair(t, d.url) // the same user on another device

			if r := refresh(t, d.url, a1); r.code != 401 {
				t.Errorf("/refresh with an access token: %d; want 401", r.code)
			}
			wantMe(t, d.url, r1, 401, "a refresh token is not an access token")
			a2, r2 := pairOf(t, "first refresh", refresh(t, d.url, r1))
			a3, r3 := pairOf(t, "second refresh", refresh(t, d.url, r2))
			wantMe(t, d.url, a2, 200, "access tokens of a live session work")
			wantMe(t, d.url, a3, 200, "the latest access token works")

			// Replay the first refresh token: reuse revokes the session.
			if r := refresh(t, d.url, r1); r.code != 401 {
				t.Fatalf("replayed refresh token: %d %s; want 401", r.code, r.body)
			}
			wantMe(t, d.url, a3, 401, "the latest access token of a reused session")
			if r := refresh(t, d.url, r3); r.code != 401 {
				t.Errorf("latest refresh token of a reused session: %d; want 401", r.code)
			}
			wantMe(t, d.url, otherA, 200, "another session of the same user is untouched")
			otherA2, otherR2 := pairOf(t, "refresh of the other session", refresh(t, d.url, otherR))

			// Log out everywhere.
			if r := do(t, nil, "POST", d.url+"/logout-all", "", otherA2, ""); r.code != http.StatusNoContent {
				t.Fatalf("/logout-all: %d %s", r.code, r.body)
			}
			for _, tok := range []string{otherA, otherA2, a1} {
				wantMe(t, d.url, tok, 401, "issued before /logout-all")
			}
			if r := refresh(t, d.url, otherR2); r.code != 401 {
				t.Errorf("refresh token issued before /logout-all: %d; want 401", r.code)
			}
			a5, r5 := loginPair(t, d.url)
			wantMe(t, d.url, a5, 200, "a login after /logout-all works at once (the demo has no leeway)")
			pairOf(t, "refresh after /logout-all", refresh(t, d.url, r5))
		})
	}
}

// Many clients refreshing one token at once: exactly one gets a pair.
func TestRefreshRace(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	_, rt := loginPair(t, d.url)
	const racers = 16
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch r := refresh(t, d.url, rt); r.code {
			case 200:
				ok.Add(1)
			case 401:
				refused.Add(1)
			default:
				t.Errorf("/refresh: %d %s", r.code, r.body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != racers-1 {
		t.Errorf("%d of %d concurrent refreshes won and %d were refused; want 1 and %d", ok.Load(), racers, refused.Load(), racers-1)
	}
}

// With -grace, the tabs of one browser refreshing one token at once all get
// the same new pair, and the session lives on; a replay once the new
// refresh token was used is still reuse.
func TestRefreshGrace(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, append(boltArgs(t), "-grace", "30s")...)
	_, rt := loginPair(t, d.url)
	const tabs = 8
	pairs := make([]reply, tabs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pairs[i] = refresh(t, d.url, rt)
		}()
	}
	close(start)
	wg.Wait()
	a, r := pairOf(t, "tab 0", pairs[0])
	for i, p := range pairs {
		if a2, r2 := pairOf(t, "tab", p); a2 != a || r2 != r {
			t.Fatalf("tab %d got another pair than tab 0", i)
		}
	}
	wantMe(t, d.url, a, 200, "the tabs' shared access token")
	pairOf(t, "refresh of the shared pair", refresh(t, d.url, r))
	if res := refresh(t, d.url, rt); res.code != 401 {
		t.Errorf("the first refresh token, once its successor was used: %d; want 401", res.code)
	}
	wantMe(t, d.url, a, 401, "the session of a reused refresh token")
}
