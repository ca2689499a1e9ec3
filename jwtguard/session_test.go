package jwtguard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func sessionGuard(t testing.TB, store blocklist.Store, opts ...jwtguard.Option) *jwtguard.Guard {
	t.Helper()
	return newGuard(t, store, append([]jwtguard.Option{jwtguard.WithSessions(jwtguard.Sessions{
		SigningMethod: jwt.SigningMethodHS256, SigningKey: testKey,
		AccessTTL: time.Minute, RefreshTTL: time.Hour,
	})}, opts...)...)
}

func newSession(t testing.TB, g *jwtguard.Guard, sub string) *jwtguard.Pair {
	t.Helper()
	p, err := g.NewSession(sub, jwt.MapClaims{"role": "admin"})
	if err != nil {
		t.Fatalf("NewSession(%q): %v", sub, err)
	}
	return p
}

// wantAccess checks whether the middleware lets the access token through.
func wantAccess(t *testing.T, g *jwtguard.Guard, token string, want bool, why string) {
	t.Helper()
	r := serve(g.Middleware(whoami), bearerRequest("GET", token))
	if got := r.code == http.StatusOK; got != want {
		t.Errorf("access token accepted = %v (status %d), want %v: %s", got, r.code, want, why)
	}
}

func TestSessionRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := sessionGuard(t, newMemory(t))
	p := newSession(t, g, "alice")
	wantAccess(t, g, p.AccessToken, true, "fresh access token")
	wantAccess(t, g, p.RefreshToken, false, "a refresh token is not an access token")
	if _, err := g.Refresh(ctx, p.AccessToken); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Refresh with an access token: %v; want ErrInvalidToken", err)
	}

	p2, err := g.Refresh(ctx, p.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if p2.SessionID != p.SessionID || p2.RefreshToken == p.RefreshToken {
		t.Fatalf("refreshed pair: session %q (want %q), same refresh token: %v", p2.SessionID, p.SessionID, p2.RefreshToken == p.RefreshToken)
	}
	tok, err := g.Verify(ctx, p2.AccessToken)
	if err != nil || tok.Claims["role"] != "admin" || tok.Claims["sub"] != "alice" {
		t.Fatalf("refreshed access token: %v, claims %v; want the extra claim carried over", err, tok)
	}
	wantAccess(t, g, p.AccessToken, true, "the earlier access token of a live session lives on")

	// Rotate again, then replay the first refresh token: reuse.
	p3, err := g.Refresh(ctx, p2.RefreshToken)
	if err != nil {
		t.Fatalf("second Refresh: %v", err)
	}
	other := newSession(t, g, "alice")
	_, err = g.Refresh(ctx, p.RefreshToken)
	if !errors.Is(err, jwtguard.ErrRefreshReused) || !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("replayed refresh token: %v; want ErrRefreshReused and ErrRevoked", err)
	}
	wantAccess(t, g, p3.AccessToken, false, "the session of a reused refresh token is revoked")
	if _, err := g.Refresh(ctx, p3.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Errorf("latest refresh token after reuse: %v; want ErrRevoked", err)
	}
	wantAccess(t, g, other.AccessToken, true, "another session of the same user is untouched")
	if _, err := g.Refresh(ctx, other.RefreshToken); err != nil {
		t.Errorf("refresh of the other session: %v", err)
	}
}

func TestLogoutAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := sessionGuard(t, newMemory(t))
	a, b, bob := newSession(t, g, "alice"), newSession(t, g, "alice"), newSession(t, g, "bob")
	b2, err := g.Refresh(ctx, b.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.LogoutAll(ctx, "alice"); err != nil {
		t.Fatalf("LogoutAll: %v", err)
	}
	for _, tok := range []string{a.AccessToken, b.AccessToken, b2.AccessToken} {
		wantAccess(t, g, tok, false, "issued before LogoutAll")
	}
	for _, tok := range []string{a.RefreshToken, b2.RefreshToken} {
		if _, err := g.Refresh(ctx, tok); !errors.Is(err, jwtguard.ErrRevoked) {
			t.Errorf("refresh token issued before LogoutAll: %v; want ErrRevoked", err)
		}
	}
	wantAccess(t, g, bob.AccessToken, true, "another subject is untouched")
	after := newSession(t, g, "alice") // at once, no sleep
	wantAccess(t, g, after.AccessToken, true, "a login after LogoutAll works")
	if _, err := g.Refresh(ctx, after.RefreshToken); err != nil {
		t.Errorf("refresh after LogoutAll: %v", err)
	}
}

// Subjects and session ids of any length and bytes stay within the ids a
// Store accepts, and never meet each other or a jti.
func TestSessionOddValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := sessionGuard(t, newMemory(t))
	long := strings.Repeat("ü", 3000)
	p := newSession(t, g, long)
	q := newSession(t, g, long[:len(long)-2])
	if err := g.LogoutAll(ctx, long); err != nil {
		t.Fatalf("LogoutAll of a 6000-byte subject: %v", err)
	}
	wantAccess(t, g, p.AccessToken, false, "long subject logged out")
	wantAccess(t, g, q.AccessToken, true, "a subject that is a prefix of it is another")

	now := time.Now()
	base := jwt.MapClaims{"sub": "carol", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) string {
		c := jwt.MapClaims{}
		for kk, vv := range base {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return hs256(t, c)
	}
	sid := strings.Repeat("s", 2000)
	if err := g.RevokeSession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	wantAccess(t, g, with("sid", sid), false, "long session revoked")
	wantAccess(t, g, with("sid", sid[1:]), true, "another long session")
	for _, jti := range []string{"sid:x", "sub:carol", "sid#x", "sub#y", "sig:z"} {
		wantAccess(t, g, with("jti", jti), false, "a jti in a reserved namespace is invalid")
	}
	wantAccess(t, g, with("jti", "sid-ok"), true, "an ordinary jti")
	wantAccess(t, g, with("iat", nil), false, "sessions need iat")
	wantAccess(t, g, with("exp", now.Add(2*time.Hour).Unix()), false, "lives longer than RefreshTTL")
	wantAccess(t, g, with("iat", now.Add(time.Hour).Unix()), false, "iat in the future")
	wantAccess(t, g, with("token_use", "id"), false, "unknown token_use")
	wantAccess(t, g, with("sid", 42), false, "sid not a string")
}

// Of many concurrent refreshes of one token exactly one wins; the others
// see reuse.
func TestRefreshRace(t *testing.T) {
	t.Parallel()
	g := sessionGuard(t, newMemory(t))
	p := newSession(t, g, "alice")
	const racers = 32
	var wins, reused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := g.Refresh(context.Background(), p.RefreshToken)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, jwtguard.ErrRevoked):
				reused.Add(1)
			default:
				t.Errorf("Refresh: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || reused.Load() != racers-1 {
		t.Errorf("%d wins and %d refusals of %d concurrent refreshes; want 1 and %d", wins.Load(), reused.Load(), racers, racers-1)
	}
}

// countingStore counts the calls that reach the Store.
type countingStore struct {
	*memorystore.Store
	calls atomic.Int32
}

func (c *countingStore) IsRevoked(ctx context.Context, jti string) (bool, error) {
	c.calls.Add(1)
	return c.Store.IsRevoked(ctx, jti)
}

func (c *countingStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	c.calls.Add(1)
	return c.Store.RevokedUntil(ctx, jti)
}

func (c *countingStore) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	c.calls.Add(1)
	return c.Store.RevokedUntilEach(ctx, jtis, until)
}

// The middleware checks a token's jti, session and subject in one call.
func TestSessionOneLookup(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: newMemory(t)}
	g := sessionGuard(t, store)
	p := newSession(t, g, "alice")
	store.calls.Store(0)
	wantAccess(t, g, p.AccessToken, true, "fresh")
	if n := store.calls.Load(); n != 1 {
		t.Errorf("one request made %d calls to the Store; want 1", n)
	}
}

func TestSessionsOptions(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	for name, s := range map[string]jwtguard.Sessions{
		"negative TTL":       {AccessTTL: -time.Second},
		"access > refresh":   {AccessTTL: time.Hour, RefreshTTL: time.Minute},
		"method without key": {SigningMethod: jwt.SigningMethodHS256},
	} {
		if _, err := jwtguard.New(mem, keyFunc, jwtguard.WithAlgorithms("HS256"), jwtguard.WithSessions(s)); err == nil {
			t.Errorf("WithSessions(%s): no error", name)
		}
	}
	type plain struct{ blocklist.Store }
	if _, err := jwtguard.New(plain{mem}, keyFunc, jwtguard.WithAlgorithms("HS256"), jwtguard.WithSessions(jwtguard.Sessions{})); err == nil {
		t.Error("WithSessions over a plain Store: no error")
	}
	g := newGuard(t, mem)
	if _, err := g.NewSession("alice", nil); err == nil {
		t.Error("NewSession without WithSessions: no error")
	}
	if _, err := sessionGuard(t, mem).NewSession("alice", jwt.MapClaims{"sid": "mine"}); err == nil {
		t.Error("NewSession with a reserved extra claim: no error")
	}
}

// RFC 7009 is mostly used to revoke refresh tokens: the handler takes one,
// though the middleware refuses it, and ends its whole session.
func TestRevocationHandlerRefreshToken(t *testing.T) {
	t.Parallel()
	g := sessionGuard(t, newMemory(t))
	p := newSession(t, g, "alice")
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+p.RefreshToken+"&token_type_hint=refresh_token"), p.AccessToken)); res.code != 200 {
		t.Fatalf("RFC 7009 of a refresh token: %d %q", res.code, res.body)
	}
	wantAccess(t, g, p.AccessToken, false, "the session of a revoked refresh token")
	if _, err := g.Refresh(context.Background(), p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Errorf("Refresh after RFC 7009 revocation: %v; want ErrRevoked", err)
	}
}

// Revoke (and so RFC 7009) holds a token to the rules the middleware does:
// under sessions a jti in a reserved namespace is invalid, and revoking it
// must not write into the Guard's own ids. Here a token whose jti is
// "sub:alice" would otherwise act as a LogoutAll of alice.
func TestRevokeReservedJTI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := sessionGuard(t, newMemory(t))
	p := newSession(t, g, "alice")
	now := time.Now()
	// Revoked until exp, the entry would put alice's cutoff at exp minus
	// RefreshTTL: a second from now, after p's iat.
	crafted := hs256(t, jwt.MapClaims{"sub": "mallory", "jti": "sub:alice", "iat": now.Unix(), "exp": now.Add(time.Hour + time.Second).Unix()})
	if err := g.Revoke(ctx, crafted); !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("Revoke of a token with a reserved jti: %v; want ErrInvalidToken", err)
	}
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+crafted), p.AccessToken)); res.code != 200 {
		t.Errorf("RFC 7009 of a token with a reserved jti: %d; want 200", res.code)
	}
	wantAccess(t, g, p.AccessToken, true, "alice is untouched by revoking another token")
}
