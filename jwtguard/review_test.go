package jwtguard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

// Two copies of one refresh token (one jti) with different lifetimes: a
// replay within the grace period answered by a Guard whose RefreshTTL
// differs mints the successor again with another exp. The record of the
// first exchange of either copy must be read the same from the other copy:
// a replay of the short copy long after the long copy was exchanged is
// reuse, not a grace replay.
func TestReviewGraceCopiesOfDifferentLife(t *testing.T) {
	ctx := context.Background()
	inBubble(t, func(t *testing.T, e *sessionEnv) {
		const grace = 10 * time.Second
		long := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: 24 * time.Hour, GracePeriod: grace}, 0)
		short := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour, GracePeriod: grace}, 0)

		p := newSession(t, long, "mallory")
		pLong, err := long.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		pShort, err := short.Refresh(ctx, p.RefreshToken) // a replay within the window
		if err != nil {
			t.Fatal(err)
		}
		if pShort.RefreshExpiresAt.Equal(pLong.RefreshExpiresAt) {
			t.Fatal("the copies have the same exp; the test needs two lives")
		}
		// The long copy is exchanged, then the short one replayed well after
		// the window: reuse.
		e.advance(time.Second)
		if _, err := long.Refresh(ctx, pLong.RefreshToken); err != nil {
			t.Fatal(err)
		}
		e.advance(30 * time.Minute)
		if _, err := short.Refresh(ctx, pShort.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
			t.Errorf("short copy replayed 30 minutes after the long one's exchange: %v; want ErrRefreshReused", err)
		}

		// The other order: the short copy is exchanged, the long copy comes
		// after the short one's record would end (its life plus the pad): it
		// must not be a first exchange again.
		q := newSession(t, long, "mallory2")
		qLong, err := long.Refresh(ctx, q.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		qShort, err := short.Refresh(ctx, q.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := short.Refresh(ctx, qShort.RefreshToken); err != nil {
			t.Fatal(err)
		}
		e.advance(2 * time.Hour)
		if _, err := long.Refresh(ctx, qLong.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
			t.Errorf("long copy presented after the short copy's exchange: %v; want ErrRefreshReused", err)
		}
	})
}

// Session ids a foreign issuer (or anyone who can have one signed) crafts
// around the ".<n>s" bound: non-canonical numbers, other digits, tiny,
// huge, long enough to switch to the digest id. After RevokeSession every
// token of the session that verifies is refused for its whole life, and a
// sid whose bound is malformed never lets a longer-lived token through.
func TestReviewCraftedSessionIDs(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("k", blocklist.MaxIDLen) + ".60s"
	for _, tc := range []struct {
		sid   string
		life  time.Duration // exp − iat of the crafted token
		valid bool          // whether it verifies before RevokeSession
	}{
		{"a.01s", time.Second, false},                 // leading zero: invalid
		{"a.0s", time.Second, false},                  // zero: invalid
		{"a.+5s", time.Hour, true},                    // not a bound: RefreshTTL applies
		{"a.-5s", time.Hour, true},                    // not a bound
		{"a.5S", time.Hour, true},                     // not a bound
		{"a.٥s", time.Hour, true},                     // Arabic-Indic five: not a bound
		{"a.5s", time.Hour, false},                    // lives longer than it declares
		{"a.1s", time.Second, true},                   // tiny
		{"a.99999999999999999999s", time.Hour, false}, // overflows int64
		{"a.34560001s", time.Hour, false},             // over MaxRefreshTTL
		{"a.34560000s", time.Hour, true},              // MaxRefreshTTL exactly
		{long, time.Minute, true},                     // digest form, declared 60 s
		{long[:len(long)-1] + "S", time.Hour, true},
	} {
		t.Run(tc.sid[max(0, len(tc.sid)-24):], func(t *testing.T) {
			inBubble(t, func(t *testing.T, e *sessionEnv) {
				g := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: 2 * time.Hour}, 0)
				now := e.now()
				tok := hs256(t, jwt.MapClaims{"sub": "eve", "sid": tc.sid, "iat": now.Unix(), "exp": now.Add(tc.life).Unix()})
				if got := accepted(g, tok); got != tc.valid {
					t.Fatalf("accepted %v before RevokeSession; want %v", got, tc.valid)
				}
				if err := g.RevokeSession(ctx, tc.sid); err != nil {
					t.Fatal(err)
				}
				for _, d := range []time.Duration{0, tc.life / 2, tc.life} {
					e.advance(d - (e.now().Sub(now)))
					if accepted(g, tok) {
						t.Fatalf("accepted %v after RevokeSession", e.now().Sub(now))
					}
				}
			})
		})
	}
}

// A token minted before LogoutAll by an issuer that writes iat below the
// millisecond (RFC 7519 allows any fraction) is covered: its iat is read
// rounded down, never up onto the cutoff.
func TestReviewSubMillisecondIatBeforeLogoutAll(t *testing.T) {
	ctx := context.Background()
	inBubble(t, func(t *testing.T, e *sessionEnv) {
		g := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour}, 0)
		if err := g.LogoutAll(ctx, "ivy"); err != nil {
			t.Fatal(err)
		}
		// The layout gives the cutoff back: the entry ends MaxRefreshTTL plus
		// twice MaxLeeway after it.
		until, err := e.reader.RevokedUntil(ctx, "sub:ivy")
		if err != nil || until.IsZero() {
			t.Fatalf("RevokedUntil: %v, %v", until, err)
		}
		cutoffMs := until.Add(-jwtguard.MaxRefreshTTL - 2*jwtguard.MaxLeeway).UnixMilli()
		tok := func(iat float64) string {
			return hs256(t, jwt.MapClaims{"sub": "ivy", "iat": iat, "exp": time.UnixMilli(cutoffMs).Add(time.Minute).Unix()})
		}
		if accepted(g, tok(float64(cutoffMs)/1000-0.0003)) {
			t.Error("a token with an iat 0.3 ms before the cutoff survives LogoutAll")
		}
		if !accepted(g, tok(float64(cutoffMs)/1000)) {
			t.Error("a token issued at the cutoff (to the millisecond, as the Guard writes iat) is refused")
		}
	})
}

// A grace replay after RevokeSession, or after a reuse revoked the
// session, mints nothing.
func TestReviewGraceReplayAfterRevokeSession(t *testing.T) {
	ctx := context.Background()
	inBubble(t, func(t *testing.T, e *sessionEnv) {
		g := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour, GracePeriod: time.Minute}, 0)
		p := newSession(t, g, "jack")
		if _, err := g.Refresh(ctx, p.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if err := g.RevokeSession(ctx, p.SessionID); err != nil {
			t.Fatal(err)
		}
		before := g.SessionStats()
		if q, err := g.Refresh(ctx, p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) || q != nil {
			t.Errorf("grace replay after RevokeSession: %v, pair %v; want ErrRevoked and none", err, q != nil)
		}
		if g.SessionStats() != before {
			t.Errorf("stats moved: %+v -> %+v", before, g.SessionStats())
		}
	})
}

// RFC 7519 section 4.1.2: a sub is unique only within its issuer. With a
// Guard that accepts two issuers, alice of one may not revoke the tokens
// of alice of the other through RFC 7009.
func TestReviewRevocationAcrossIssuers(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	tok := func(iss, jti string) string {
		c := claims(jti)
		if iss != "" {
			c["iss"] = iss
		}
		return hs256(t, c)
	}
	caller := tok("https://idp-a.example", "caller")
	for _, target := range []string{tok("https://idp-b.example", "b1"), tok("", "none")} {
		res := serve(g.RevocationHandler(), withBearer(formRequest("token="+target), caller))
		if res.code != http.StatusBadRequest {
			t.Errorf("revoking alice of another issuer: %d %s; want 400 unauthorized_client", res.code, res.body)
		}
		if !accepted(g, target) {
			t.Error("the other issuer's token was revoked")
		}
	}
	same := tok("https://idp-a.example", "a1")
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+same), caller)); res.code != http.StatusOK || accepted(g, same) {
		t.Errorf("revoking alice's own token of the same issuer: %d", res.code)
	}
}

// A Guard without sessions sharing the Store with one that has them must
// not write into the session layout: a token whose jti is "sub:alice",
// revoked through it with an exp far ahead, would put alice's LogoutAll
// cutoff in the future and refuse every login of hers; "ref:"+jti would
// make a refresh token's first exchange look like reuse. Such jtis are
// invalid in every mode.
func TestReviewReservedJTIWithoutSessions(t *testing.T) {
	ctx := context.Background()
	store := newMemory(t)
	plain := newGuard(t, store)
	withSessions := sessionGuard(t, store)
	now := time.Now()
	for _, jti := range []string{"sub:alice", "sid:x", "ref:y", "sub#z", "sid#z", "ref#z", "sig:z"} {
		crafted := hs256(t, jwt.MapClaims{"sub": "mallory", "jti": jti, "iat": now.Unix(), "exp": now.Add(600 * 24 * time.Hour).Unix()})
		if err := plain.Revoke(ctx, crafted); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("jti %q: Revoke without sessions: %v; want ErrInvalidToken", jti, err)
		}
		if accepted(plain, crafted) {
			t.Errorf("jti %q accepted without sessions", jti)
		}
	}
	p := newSession(t, withSessions, "alice")
	if !accepted(withSessions, p.AccessToken) {
		t.Error("alice's login is refused after another Guard revoked a crafted jti")
	}
}

// crit in forms a naive check of the raw header would miss: spelled with
// a JSON escape, given twice (the decoder keeps the last), or emptied by a
// second entry.
func TestReviewCritOddForms(t *testing.T) {
	ctx := context.Background()
	g := sessionGuard(t, newMemory(t))
	now := time.Now().Unix()
	payload := `{"sub":"alice","jti":"c","iat":` + itoa(now) + `,"exp":` + itoa(now+600) + `}`
	for _, header := range []string{
		`{"alg":"HS256","cr\u0069t":["x"]}`,
		`{"alg":"HS256","crit":["x"],"crit":null}`,
		`{"alg":"HS256","crit":["x"],"crit":[]}`,
		`{"alg":"HS256","crit":{}}`,
		`{"alg":"HS256","crit":false}`,
	} {
		if _, err := g.Verify(ctx, rawToken(t, header, payload)); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("header %s: Verify: %v; want ErrInvalidToken", header, err)
		}
	}
}
