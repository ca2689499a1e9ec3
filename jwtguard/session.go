package jwtguard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
)

// ErrRefreshReused means a refresh token was presented again after it had
// been exchanged: it was stolen, or a client refreshed twice at once. The
// whole session has been revoked. It always comes wrapped together with
// ErrRevoked, so code that answers ErrRevoked with 401 needs no change.
var ErrRefreshReused = errors.New("jwtguard: refresh token reused; session revoked")

// Claims the Guard reads and writes when sessions are on.
const (
	// ClaimSessionID names the claim holding the id of the session (one
	// login) a token belongs to; every token minted from one login carries
	// the same value.
	ClaimSessionID = "sid"

	// ClaimTokenUse names the claim telling access tokens from refresh
	// tokens: TokenUseAccess or TokenUseRefresh.
	ClaimTokenUse = "token_use"

	// TokenUseAccess marks an access token. The middleware accepts tokens
	// with this token_use, or with none.
	TokenUseAccess = "access"

	// TokenUseRefresh marks a refresh token: only Refresh accepts it; the
	// middleware, Verify and Logout refuse it as an access token, whether
	// or not the Guard has sessions on. Revoke and RevocationHandler
	// revoke it (with its session, under sessions).
	TokenUseRefresh = "refresh"
)

// Default lifetimes of the tokens a Guard mints, when Sessions leaves them
// zero.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 30 * 24 * time.Hour
)

// Sessions configures the session features of a Guard (see WithSessions).
type Sessions struct {
	// SigningMethod and SigningKey sign the tokens that NewSession and
	// Refresh mint; the Guard's key function must accept them. Leave both
	// nil in a service that only verifies tokens: it still enforces
	// sessions and LogoutAll, but cannot mint.
	SigningMethod jwt.SigningMethod
	SigningKey    any

	// AccessTTL is the lifetime of the access tokens minted
	// (DefaultAccessTTL when zero).
	AccessTTL time.Duration

	// RefreshTTL is the lifetime of the refresh tokens minted
	// (DefaultRefreshTTL when zero). Each refresh mints a new refresh token
	// that lives RefreshTTL from then, so an active session lasts as long
	// as it is used.
	//
	// It is also the longest life the Guard allows any token: a token
	// whose exp is more than RefreshTTL after its iat is invalid. LogoutAll
	// relies on this bound (see the package doc), so every Guard that
	// shares a Store must be given the same RefreshTTL, and it must not
	// shrink while LogoutAll entries written with the old value live.
	RefreshTTL time.Duration
}

// sessions is the Guard's checked copy of Sessions.
type sessions struct {
	method     jwt.SigningMethod // nil: verify only
	key        any
	accessTTL  time.Duration
	refreshTTL time.Duration
	spanMs     int64 // how long a subject's cutoff entry lives past the cutoff, in ms
	now        func() time.Time
	expiry     blocklist.ExpiryStore
	once       blocklist.OnceStore // nil when the Store cannot revoke once
	issuer     string
	audience   []string
}

// WithSessions turns on sessions: refresh tokens with rotation and reuse
// detection, LogoutAll and RevokeSession, as the package doc describes. The
// Guard then requires an iat claim in every token, refuses refresh tokens
// where access tokens are expected, and checks each token's jti, its
// session and its subject's logout cutoff in one lookup. The Store must be
// a blocklist.ExpiryStore, and a blocklist.OnceStore when s has a signing
// key (every Store of this module is both); New returns an error
// otherwise, for a negative TTL, for an AccessTTL longer than RefreshTTL,
// and for a signing method without a key or the other way round.
func WithSessions(s Sessions) Option {
	return func(c *config) {
		if s.AccessTTL < 0 || s.RefreshTTL < 0 {
			c.fail("WithSessions: AccessTTL %v and RefreshTTL %v must not be negative", s.AccessTTL, s.RefreshTTL)
			return
		}
		if (s.SigningMethod == nil) != (s.SigningKey == nil) {
			c.fail("WithSessions: give both SigningMethod and SigningKey, or neither")
			return
		}
		if s.AccessTTL == 0 {
			s.AccessTTL = DefaultAccessTTL
		}
		if s.RefreshTTL == 0 {
			s.RefreshTTL = DefaultRefreshTTL
		}
		if s.AccessTTL > s.RefreshTTL {
			c.fail("WithSessions: AccessTTL %v is longer than RefreshTTL %v, the longest life of any token", s.AccessTTL, s.RefreshTTL)
			return
		}
		c.sessions = &s
	}
}

// newSessions checks the Sessions of cfg against store; nil when sessions
// are off.
func newSessions(cfg *config, store blocklist.Store) *sessions {
	s := cfg.sessions
	if s == nil {
		return nil
	}
	expiry, ok := store.(blocklist.ExpiryStore)
	if !ok && store != nil {
		cfg.fail("WithSessions: the store (%T) is not a blocklist.ExpiryStore", store)
	}
	once, _ := store.(blocklist.OnceStore)
	if once == nil && s.SigningKey != nil && store != nil {
		cfg.fail("WithSessions: the store (%T) is not a blocklist.OnceStore, which Refresh needs", store)
	}
	now := cfg.now
	if now == nil {
		now = time.Now
	}
	span := s.RefreshTTL + cfg.leeway
	return &sessions{
		method:     s.SigningMethod,
		key:        s.SigningKey,
		accessTTL:  s.AccessTTL,
		refreshTTL: s.RefreshTTL,
		spanMs:     (int64(span) + int64(time.Millisecond) - 1) / int64(time.Millisecond),
		now:        now,
		expiry:     expiry,
		once:       once,
		issuer:     cfg.issuer,
		audience:   cfg.audience,
	}
}

// Pair is what NewSession and Refresh give a client: an access token, a
// refresh token, both of one session. json.Marshal of a Pair is the OAuth
// 2.0 token response a login or refresh endpoint answers with, and
// json.Unmarshal reads one back (see MarshalJSON).
type Pair struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	// SessionID is the sid claim of both tokens.
	SessionID string

	mintedAt time.Time // when NewSession or Refresh minted it; see MarshalJSON
}

// Ids of the Store entries behind sessions. A jti is stored as it is, so
// these namespaces are kept out of jtis: with sessions on, a jti that
// starts with a reserved prefix makes its token invalid. A value too long
// to fit in blocklist.MaxIDLen after its prefix is replaced by its digest,
// under a prefix of its own, so no two values ever share an id.
const (
	sessionPrefix       = "sid:" // "sid:" + sid
	sessionDigestPrefix = "sid#" // "sid#" + base64url(SHA-256(sid))
	subjectPrefix       = "sub:" // "sub:" + sub
	subjectDigestPrefix = "sub#" // "sub#" + base64url(SHA-256(sub))
)

func namespacedID(prefix, digestPrefix, v string) string {
	if len(prefix)+len(v) <= blocklist.MaxIDLen {
		return prefix + v
	}
	sum := sha256.Sum256([]byte(v))
	return digestPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

func sessionID(sid string) string {
	return namespacedID(sessionPrefix, sessionDigestPrefix, sid)
}

func subjectID(sub string) string {
	return namespacedID(subjectPrefix, subjectDigestPrefix, sub)
}

// reservedJTI reports whether a jti would fall in a namespace of the Guard.
func reservedJTI(jti string) bool {
	for _, p := range []string{IDPrefix, sessionPrefix, sessionDigestPrefix, subjectPrefix, subjectDigestPrefix} {
		if strings.HasPrefix(jti, p) {
			return true
		}
	}
	return false
}

// sessionClaims are the claims sessions read, checked.
type sessionClaims struct {
	sid, sub, use string
	iatMs         int64
}

// sessionClaims reads and checks the session claims of a verified token.
func (g *Guard) sessionClaims(t *Token) (sessionClaims, error) {
	var c sessionClaims
	var ok bool
	if jti, _ := t.Claims["jti"].(string); jti != "" && reservedJTI(jti) {
		return c, fmt.Errorf("%w: jti starts with a prefix reserved for the Guard's ids", ErrInvalidToken)
	}
	for name, dst := range map[string]*string{ClaimSessionID: &c.sid, "sub": &c.sub, ClaimTokenUse: &c.use} {
		v, present := t.Claims[name]
		if !present {
			continue
		}
		if *dst, ok = v.(string); !ok || *dst == "" {
			return c, fmt.Errorf("%w: %s is not a non-empty string", ErrInvalidToken, name)
		}
	}
	if c.use != "" && c.use != TokenUseAccess && c.use != TokenUseRefresh {
		return c, fmt.Errorf("%w: unknown %s %q", ErrInvalidToken, ClaimTokenUse, c.use)
	}
	if !t.hasIat {
		return c, fmt.Errorf("%w: sessions need an iat claim", ErrInvalidToken)
	}
	c.iatMs = t.iatMs
	s := g.sess
	if c.iatMs > s.now().Add(g.leeway).UnixMilli() {
		return c, fmt.Errorf("%w: iat is in the future", ErrInvalidToken)
	}
	// Both dates are within the years 1 to 9999 (parse checked them), so
	// the difference cannot overflow.
	if t.expMs-c.iatMs > s.refreshTTL.Milliseconds() {
		return c, fmt.Errorf("%w: lives longer than RefreshTTL %v", ErrInvalidToken, s.refreshTTL)
	}
	return c, nil
}

// lookup makes the one lookup of a token under sessions: its jti, its
// session and its subject's cutoff. It reports whether the jti is revoked,
// and whether the session or subject is.
func (g *Guard) lookup(ctx context.Context, t *Token, c sessionClaims) (jtiRevoked, sessionRevoked bool, err error) {
	var idBuf [3]string
	var untilBuf [3]time.Time
	ids := append(idBuf[:0], t.ID)
	sidAt, subAt := -1, -1
	if c.sid != "" {
		sidAt, ids = len(ids), append(ids, sessionID(c.sid))
	}
	if c.sub != "" {
		subAt, ids = len(ids), append(ids, subjectID(c.sub))
	}
	until := untilBuf[:len(ids)]
	if err := blocklist.RevokedUntilEach(ctx, g.sess.expiry, ids, until); err != nil {
		return false, false, err
	}
	if sidAt > 0 && !until[sidAt].IsZero() {
		sessionRevoked = true
	}
	if subAt > 0 && !until[subAt].IsZero() && c.iatMs < until[subAt].UnixMilli()-g.sess.spanMs {
		sessionRevoked = true // issued before the subject logged out everywhere
	}
	return !until[0].IsZero(), sessionRevoked, nil
}

// checkSession is check under sessions, for a token check has already
// found not to be a refresh token: its jti, session and subject must not be
// revoked.
func (g *Guard) checkSession(ctx context.Context, t *Token) (*Token, error) {
	c, err := g.sessionClaims(t)
	if err != nil {
		return nil, err
	}
	jtiRevoked, sessionRevoked, err := g.lookup(ctx, t, c)
	if err != nil {
		return t, fmt.Errorf("jwtguard: checking the blocklist: %w", err)
	}
	if jtiRevoked || sessionRevoked {
		return nil, ErrRevoked
	}
	return t, nil
}

// NewSession starts a session for the subject sub, as a login does: it
// mints an access token and a refresh token sharing a new session id. extra
// claims (roles, a tenant; nil for none) go into both tokens, and Refresh
// carries them over; they must not set iss, sub, aud, exp, nbf, iat, jti,
// sid or token_use. It needs WithSessions with a signing key.
func (g *Guard) NewSession(sub string, extra jwt.MapClaims) (*Pair, error) {
	if err := g.canMint("NewSession"); err != nil {
		return nil, err
	}
	if sub == "" {
		return nil, errors.New("jwtguard: NewSession: empty subject")
	}
	for name := range extra {
		if reservedClaim(name) {
			return nil, fmt.Errorf("jwtguard: NewSession: extra claim %q is set by the Guard", name)
		}
	}
	return g.mint(sub, rand.Text(), extra)
}

func (g *Guard) canMint(op string) error {
	if g.sess == nil || g.sess.method == nil {
		return fmt.Errorf("jwtguard: %s needs WithSessions with a SigningMethod and SigningKey", op)
	}
	return nil
}

func reservedClaim(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "nbf", "iat", "jti", ClaimSessionID, ClaimTokenUse:
		return true
	}
	return false
}

// mint signs a new pair of the session sid.
func (g *Guard) mint(sub, sid string, extra jwt.MapClaims) (*Pair, error) {
	s := g.sess
	now := s.now()
	// iat to the millisecond (RFC 7519 allows a fractional NumericDate), so
	// that a token minted right after LogoutAll is told from one minted
	// right before.
	iat := float64(now.UnixMilli()) / 1000
	p := &Pair{
		mintedAt:         now,
		SessionID:        sid,
		AccessExpiresAt:  now.Add(s.accessTTL).Truncate(time.Second),
		RefreshExpiresAt: now.Add(s.refreshTTL).Truncate(time.Second),
	}
	sign := func(use string, exp time.Time) (string, error) {
		c := jwt.MapClaims{}
		for k, v := range extra {
			c[k] = v
		}
		c["sub"], c["jti"], c[ClaimSessionID], c[ClaimTokenUse] = sub, rand.Text(), sid, use
		c["iat"], c["exp"] = iat, exp.Unix()
		if s.issuer != "" {
			c["iss"] = s.issuer
		}
		if len(s.audience) > 0 {
			c["aud"] = s.audience
		}
		tok, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
		if err != nil {
			return "", fmt.Errorf("jwtguard: signing a %s token: %w", use, err)
		}
		return tok, nil
	}
	var err error
	if p.AccessToken, err = sign(TokenUseAccess, p.AccessExpiresAt); err != nil {
		return nil, err
	}
	if p.RefreshToken, err = sign(TokenUseRefresh, p.RefreshExpiresAt); err != nil {
		return nil, err
	}
	return p, nil
}

// Refresh exchanges a refresh token for a new pair of the same session, and
// revokes the refresh token: each refresh token works once (rotation).
//
// The token must verify as the middleware's tokens do, carry token_use
// "refresh" and a sid, and neither it, its session nor its subject may be
// revoked; otherwise the error wraps ErrInvalidToken or ErrRevoked. A
// refresh token that was already exchanged is a sign of theft (or of a
// client refreshing twice at once; only one of two concurrent refreshes of
// one token can win, across every process sharing the Store): Refresh then
// revokes the whole session, so the thief's and the owner's tokens all stop
// working, and returns an error wrapping ErrRefreshReused and ErrRevoked.
// A Store failure is returned wrapped, and nothing is minted.
//
// It costs two round trips to a networked Store (the lookup, then the
// atomic revocation of the old token), three when reuse is detected.
func (g *Guard) Refresh(ctx context.Context, refreshToken string) (*Pair, error) {
	if err := g.canMint("Refresh"); err != nil {
		return nil, err
	}
	t, err := g.parse(refreshToken)
	if err != nil {
		return nil, err
	}
	c, err := g.sessionClaims(t)
	if err != nil {
		return nil, err
	}
	if c.use != TokenUseRefresh || c.sid == "" || c.sub == "" {
		return nil, fmt.Errorf("%w: not a refresh token (token_use %q, sid and sub required)", ErrInvalidToken, TokenUseRefresh)
	}
	jtiRevoked, sessionRevoked, err := g.lookup(ctx, t, c)
	if err != nil {
		return nil, fmt.Errorf("jwtguard: refresh: checking the blocklist: %w", err)
	}
	if sessionRevoked {
		return nil, ErrRevoked
	}
	first := false
	if !jtiRevoked {
		first, err = g.sess.once.RevokeOnce(ctx, t.ID, t.ExpiresAt.Add(g.leeway))
		if err != nil {
			return nil, fmt.Errorf("jwtguard: refresh: revoking the old refresh token: %w", err)
		}
	}
	if !first {
		if err := g.RevokeSession(ctx, c.sid); err != nil {
			return nil, fmt.Errorf("%w: %w; and revoking its session failed: %w", ErrRefreshReused, ErrRevoked, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrRefreshReused, ErrRevoked)
	}
	extra := jwt.MapClaims{}
	for k, v := range t.Claims {
		if !reservedClaim(k) {
			extra[k] = v
		}
	}
	return g.mint(c.sub, c.sid, extra)
}

// RevokeSession revokes every token carrying the session id sid, access and
// refresh, minted before or after the call, until the longest-lived of them
// could expire (RefreshTTL plus the leeway from now). It needs
// WithSessions. A Store failure is returned wrapped.
func (g *Guard) RevokeSession(ctx context.Context, sid string) error {
	if g.sess == nil {
		return errors.New("jwtguard: RevokeSession needs WithSessions")
	}
	if sid == "" {
		return errors.New("jwtguard: RevokeSession: empty session id")
	}
	exp := g.sess.now().Add(time.Duration(g.sess.spanMs) * time.Millisecond)
	if err := g.store.Revoke(ctx, sessionID(sid), exp); err != nil {
		return fmt.Errorf("jwtguard: revoking session: %w", err)
	}
	return nil
}

// LogoutAll logs the subject sub out everywhere: every token whose sub is
// sub and whose iat is before the call is refused from then on, by every
// Guard sharing the Store, whatever its session; tokens minted after
// LogoutAll returns work. It writes one entry, which expires when the
// longest-lived token it refuses would (RefreshTTL plus the leeway), and
// then waits until the cutoff has passed, a millisecond at most with the
// Stores of this module (at most a second with a Store whose RevokedUntil
// is that late). It needs WithSessions. A Store failure is returned
// wrapped; the logout may or may not have been recorded, so retry.
func (g *Guard) LogoutAll(ctx context.Context, sub string) error {
	s := g.sess
	if s == nil {
		return errors.New("jwtguard: LogoutAll needs WithSessions")
	}
	if sub == "" {
		return errors.New("jwtguard: LogoutAll: empty subject")
	}
	// The cutoff, in whole milliseconds, rounded up: every token minted
	// before now has an iat before it.
	now := s.now()
	cutoff := now.UnixMilli()
	if now.After(time.UnixMilli(cutoff)) {
		cutoff++
	}
	id := subjectID(sub)
	if err := g.store.Revoke(ctx, id, time.UnixMilli(cutoff+s.spanMs)); err != nil {
		return fmt.Errorf("jwtguard: logging out everywhere: %w", err)
	}
	// Readers derive the cutoff from when the entry ends, which a Store may
	// report late: wait until the cutoff they see has passed, so a token
	// minted after we return is never refused.
	until, err := s.expiry.RevokedUntil(ctx, id)
	if err != nil {
		return fmt.Errorf("jwtguard: logging out everywhere: reading the cutoff back: %w", err)
	}
	seen := time.UnixMilli(until.UnixMilli() - s.spanMs)
	if wait := seen.Sub(s.now()); wait > 0 && wait <= 2*time.Second {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("jwtguard: logging out everywhere: %w", ctx.Err())
		}
	}
	return nil
}

// sessionOf returns the sid of t when sessions are on, else "".
func (g *Guard) sessionOf(t *Token) string {
	if g.sess == nil {
		return ""
	}
	sid, _ := t.Claims[ClaimSessionID].(string)
	return sid
}
