package jwtguard_test

import (
	"crypto/sha256"
	"encoding/base64"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// cliReader is the reader's check documented in the README and in
// redisstore's package doc, made with the real redis-cli: a service in
// another language that verified a token's signature asks three
// PEXPIRETIME and decides with the token's claims alone.
type cliReader struct {
	cli, addr, prefix string
	leewayMs          int64
}

// pexpiretime runs one PEXPIRETIME through redis-cli.
func (r cliReader) pexpiretime(t *testing.T, id string) int64 {
	t.Helper()
	host, port, _ := strings.Cut(r.addr, ":")
	out, err := exec.Command(r.cli, "-h", host, "-p", port, "PEXPIRETIME", r.prefix+id).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli PEXPIRETIME %q: %v: %s", r.prefix+id, err, out)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("redis-cli PEXPIRETIME %q answered %q", r.prefix+id, out)
	}
	return n
}

// layoutID is what jwtguard stores for kind ("sid:" or "sub:") and value:
// the two joined, or kind's "#" form and the base64url SHA-256 of the
// value when that would be longer than blocklist.MaxIDLen.
func layoutID(kind, value string) string {
	if len(kind)+len(value) <= blocklist.MaxIDLen {
		return kind + value
	}
	sum := sha256.Sum256([]byte(value))
	return strings.TrimSuffix(kind, ":") + "#" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// revoked is the recipe: -2 means no entry; any other answer of the first
// two means revoked; the subject's entry ends MaxRefreshTTL + 10 minutes
// after the LogoutAll cutoff, and refuses tokens issued before the cutoff
// (plus the reader's leeway).
func (r cliReader) revoked(t *testing.T, raw string) bool {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	c := tok.Claims.(jwt.MapClaims)
	id, _ := c["jti"].(string)
	if id == "" {
		sum := sha256.Sum256(tok.Signature)
		id = "sig:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if r.pexpiretime(t, id) != -2 {
		return true
	}
	if sid, ok := c["sid"].(string); ok && r.pexpiretime(t, layoutID("sid:", sid)) != -2 {
		return true
	}
	if sub, ok := c["sub"].(string); ok {
		const spanMs = int64((jwtguard.MaxRefreshTTL + 2*jwtguard.MaxLeeway) / 1e6) // 34560600000
		iat, _ := c["iat"].(float64)
		iatMs := int64(math.Round(iat * 1000))
		switch end := r.pexpiretime(t, layoutID("sub:", sub)); {
		case end == -1:
			return true
		case end >= 0 && iatMs < end-spanMs+r.leewayMs:
			return true
		}
	}
	return false
}

// Issue 14, case 4: a service in another language that checks tokens with
// plain Redis commands sees every revocation jwtguard writes: a logout
// without and with sessions, a token without jti, RevokeSession and
// LogoutAll, and not the tokens that were never revoked or minted after a
// LogoutAll. Its answer matches the Guard's own for every token.
func TestReaderRecipeRedisCLI(t *testing.T) {
	t.Parallel()
	reader := cliReader{cli: redistest.CLIPath(t), addr: testserver.Redis(t).Addr(), prefix: "svc:revoked:"}
	client := redistest.Client(t, reader.addr)
	store := redisstore.New(client, redisstore.WithPrefix(reader.prefix))
	ctx := t.Context()
	sessions := sessionGuard(t, store)
	plain := newGuard(t, store)

	type token struct {
		name    string
		raw     string
		guard   *jwtguard.Guard
		revoked bool
	}
	var tokens []token
	add := func(name, raw string, g *jwtguard.Guard, revoked bool) {
		tokens = append(tokens, token{name, raw, g, revoked})
	}

	// Logout without sessions: the jti, and a token without one.
	withJTI, withoutJTI, kept := hs256(t, claims("plain-1")), hs256(t, claims("")), hs256(t, claims("plain-2"))
	for _, raw := range []string{withJTI, withoutJTI} {
		if res := serve(plain.LogoutHandler(), bearerRequest("POST", raw)); res.code != http.StatusNoContent {
			t.Fatalf("plain logout: %d %s", res.code, res.body)
		}
	}
	add("plain logout, jti", withJTI, plain, true)
	add("plain logout, no jti", withoutJTI, plain, true)
	add("plain, never revoked", kept, plain, false)

	// Logout under sessions ends the session.
	alice := newSession(t, sessions, "alice")
	if res := serve(sessions.LogoutHandler(), bearerRequest("POST", alice.AccessToken)); res.code != http.StatusNoContent {
		t.Fatalf("session logout: %d %s", res.code, res.body)
	}
	add("session logout, access", alice.AccessToken, sessions, true)
	add("session logout, refresh", alice.RefreshToken, sessions, true)

	// RevokeSession ends one session of bob's, not the other.
	bob1, bob2 := newSession(t, sessions, "bob"), newSession(t, sessions, "bob")
	if err := sessions.RevokeSession(ctx, bob1.SessionID); err != nil {
		t.Fatal(err)
	}
	add("RevokeSession", bob1.AccessToken, sessions, true)
	add("other session of the subject", bob2.AccessToken, sessions, false)

	// LogoutAll ends every session of carol's; a login after it works.
	carol1, carol2 := newSession(t, sessions, "carol"), newSession(t, sessions, "carol")
	if err := sessions.LogoutAll(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	carol3 := newSession(t, sessions, "carol")
	add("LogoutAll, first session", carol1.AccessToken, sessions, true)
	add("LogoutAll, second session", carol2.AccessToken, sessions, true)
	add("login after LogoutAll", carol3.AccessToken, sessions, false)
	add("never revoked", newSession(t, sessions, "dave").AccessToken, sessions, false)

	for _, tok := range tokens {
		if got := reader.revoked(t, tok.raw); got != tok.revoked {
			t.Errorf("%s: the redis-cli reader says revoked = %v, want %v", tok.name, got, tok.revoked)
		}
		if _, err := tok.guard.Verify(ctx, tok.raw); (err != nil) != tok.revoked {
			t.Errorf("%s: the Guard's Verify = %v, want revoked = %v", tok.name, err, tok.revoked)
		}
	}
}
