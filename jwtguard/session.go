package jwtguard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
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

// Constants of the public layout of the Store entries (see the package
// doc). Every Guard sharing a Store reads an entry the same way whatever its
// own settings, because the entries are sized by these constants, not by
// any Guard's RefreshTTL or leeway.
const (
	// MaxLeeway is the largest leeway WithLeeway accepts. Revocations
	// outlive the last moment a token they cover could be accepted by
	// MaxLeeway (by twice MaxLeeway where the issuer's clock may be ahead
	// too), so raising or lowering any Guard's leeway up to MaxLeeway
	// never ends a revocation early.
	MaxLeeway = 5 * time.Minute

	// MaxRefreshTTL is the longest Sessions.RefreshTTL WithSessions
	// accepts, and the longest life (exp minus iat) of any token a Guard
	// with sessions accepts. A LogoutAll entry lasts MaxRefreshTTL plus
	// twice MaxLeeway past its cutoff, and so does a RevokeSession entry
	// for a session id that declares no bound of its own.
	MaxRefreshTTL = 400 * 24 * time.Hour

	// MaxGracePeriod is the longest Sessions.GracePeriod WithSessions
	// accepts.
	MaxGracePeriod = 5 * time.Minute
)

// layoutPad is how long entries outlive the tokens they cover: MaxLeeway
// for the Guard that reads, MaxLeeway for an issuer whose clock is ahead.
const layoutPad = 2 * MaxLeeway

// subjectSpan is how long a LogoutAll entry outlives its cutoff.
const subjectSpan = MaxRefreshTTL + layoutPad

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
	// The session id NewSession mints declares RefreshTTL, rounded up to
	// the second, as the longest life of every token of the session (see
	// the package doc): a Refresh on any Guard mints tokens that live at
	// most that long, so changing RefreshTTL changes the sessions that
	// start afterwards. A token without such a sid may live at most
	// RefreshTTL of the Guard that checks it. RefreshTTL may be raised or
	// lowered at any time, and differ between Guards sharing a Store: no
	// recorded revocation moves. It must not exceed MaxRefreshTTL.
	RefreshTTL time.Duration

	// GracePeriod lets a client present a refresh token again shortly
	// after its first exchange, as two browser tabs refreshing at once or a
	// retry after a lost response do (default 0: any second presentation
	// is reuse). When the same refresh token comes again within
	// GracePeriod of its first exchange, and its successor has not been
	// exchanged yet, Refresh returns the successor pair again instead of
	// revoking the session: the same session, the same successor ids, and
	// the same token strings when the signing method is deterministic
	// (HS*, RS*, EdDSA) and the Guards share their settings, so the chain
	// never forks. This holds across every process sharing the Store. Out
	// of the window, or once the successor was exchanged, a replay is
	// reuse, as without a grace period. Whoever holds a refresh token
	// within the window gets the pair, a thief too: keep it to seconds.
	// It must not exceed MaxGracePeriod.
	GracePeriod time.Duration
}

// sessions is the Guard's checked copy of Sessions.
type sessions struct {
	method     jwt.SigningMethod // nil: verify only
	key        any
	accessTTL  time.Duration
	refreshTTL time.Duration
	grace      time.Duration
	sidSuffix  string // ".<RefreshTTL in seconds>s", ending the sids NewSession mints
	now        func() time.Time
	expiry     blocklist.ExpiryStore
	once       blocklist.OnceStore // nil when the Store cannot revoke once
	issuer     string
	audience   []string

	refreshes, graceReplays, reuses atomic.Uint64 // see SessionStats
}

// SessionStats are counters of the sessions of a Guard since New. Every
// field only grows; export them, or take differences between two calls.
type SessionStats struct {
	// Refreshes counts refresh tokens exchanged for the first time.
	Refreshes uint64
	// GraceReplays counts Refresh calls answered, within
	// Sessions.GracePeriod, with the successor pair of a refresh token
	// exchanged before.
	GraceReplays uint64
	// ReusesDetected counts refresh tokens presented again outside the
	// grace window (or after their successor was exchanged): each revoked
	// its session and returned ErrRefreshReused.
	ReusesDetected uint64
}

// SessionStats returns the session counters of g: atomic loads. A Guard
// without sessions returns zeros. The counts are this Guard's, not the
// fleet's: sum them over the processes sharing a Store.
func (g *Guard) SessionStats() SessionStats {
	if g.sess == nil {
		return SessionStats{}
	}
	return SessionStats{
		Refreshes:      g.sess.refreshes.Load(),
		GraceReplays:   g.sess.graceReplays.Load(),
		ReusesDetected: g.sess.reuses.Load(),
	}
}

// WithSessions turns on sessions: refresh tokens with rotation, reuse
// detection and an optional grace period, LogoutAll and RevokeSession, as
// the package doc describes. The
// Guard then requires an iat claim in every token, refuses refresh tokens
// where access tokens are expected, and checks each token's jti, its
// session and its subject's logout cutoff in one lookup. The Store must be
// a blocklist.ExpiryStore, and a blocklist.OnceStore when s has a signing
// key (every Store of this module is both); New returns an error
// otherwise, for a negative TTL, for an AccessTTL longer than RefreshTTL,
// for a RefreshTTL over MaxRefreshTTL, for a GracePeriod below 0 or over
// MaxGracePeriod, and for a signing method without a key or the other way
// round.
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
		if s.RefreshTTL > MaxRefreshTTL {
			c.fail("WithSessions: RefreshTTL %v is longer than MaxRefreshTTL %v", s.RefreshTTL, MaxRefreshTTL)
			return
		}
		if s.GracePeriod < 0 || s.GracePeriod > MaxGracePeriod {
			c.fail("WithSessions: GracePeriod %v must be from 0 to MaxGracePeriod %v", s.GracePeriod, MaxGracePeriod)
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
	return &sessions{
		method:     s.SigningMethod,
		key:        s.SigningKey,
		accessTTL:  s.AccessTTL,
		refreshTTL: s.RefreshTTL,
		grace:      s.GracePeriod,
		sidSuffix:  "." + strconv.FormatInt(int64((s.RefreshTTL+time.Second-1)/time.Second), 10) + "s",
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
	sessionPrefix         = "sid:" // "sid:" + sid
	sessionDigestPrefix   = "sid#" // "sid#" + base64url(SHA-256(sid))
	subjectPrefix         = "sub:" // "sub:" + sub
	subjectDigestPrefix   = "sub#" // "sub#" + base64url(SHA-256(sub))
	exchangedPrefix       = "ref:" // "ref:" + jti of a refresh token exchanged
	exchangedDigestPrefix = "ref#" // "ref#" + base64url(SHA-256(jti))
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

// exchangedID is the id recording the first exchange of the refresh token
// with id jti.
func exchangedID(jti string) string {
	return namespacedID(exchangedPrefix, exchangedDigestPrefix, jti)
}

// successorJTI is the jti of the token of kind use (TokenUseAccess or
// TokenUseRefresh) minted by exchanging the refresh token with id parent.
// It is derived, not drawn, so that every Guard answering a replay of the
// parent within the grace period mints the same successor. base64url holds
// no ':' or '#', so it never falls in a reserved namespace.
func successorJTI(use, parent string) string {
	sum := sha256.Sum256([]byte("jwtguard " + use + "\x00" + parent))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sidBound returns the longest life a sid declares for the tokens of its
// session: a sid ending in ".<n>s", n decimal seconds without a leading
// zero, declares n seconds. declared is false for a sid without that
// suffix. A declared bound of 0 or over MaxRefreshTTL is an error.
func sidBound(sid string) (bound time.Duration, declared bool, err error) {
	dot := strings.LastIndexByte(sid, '.')
	if dot < 0 || !strings.HasSuffix(sid, "s") || dot+2 >= len(sid) {
		return 0, false, nil
	}
	digits := sid[dot+1 : len(sid)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false, nil
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || digits[0] == '0' || n > int64(MaxRefreshTTL/time.Second) {
		return 0, true, fmt.Errorf("%w: sid declares a lifetime %q out of range", ErrInvalidToken, digits)
	}
	return time.Duration(n) * time.Second, true, nil
}

// layoutBound is the bound B of the session sid in the Store's layout: the
// life its sid declares, or MaxRefreshTTL for a sid that declares none (or
// declares one out of range). It depends on the sid alone, never on a
// Guard's settings, so every Guard sizes and reads an entry alike.
func layoutBound(sid string) time.Duration {
	bound, declared, err := sidBound(sid)
	if err != nil || !declared {
		return MaxRefreshTTL
	}
	return bound
}

// reservedJTI reports whether a jti would fall in a namespace of the Guard.
func reservedJTI(jti string) bool {
	for _, p := range []string{idPrefix, sessionPrefix, sessionDigestPrefix, subjectPrefix, subjectDigestPrefix, exchangedPrefix, exchangedDigestPrefix} {
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
	bound         time.Duration // the longest life of a token of this session
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
	c.bound = s.refreshTTL
	if c.sid != "" {
		bound, declared, err := sidBound(c.sid)
		if err != nil {
			return c, err
		}
		if declared {
			c.bound = bound
		}
	}
	// Both dates are within the years 1 to 9999 (parse checked them), so
	// the difference cannot overflow.
	if t.expMs-c.iatMs > c.bound.Milliseconds() {
		return c, fmt.Errorf("%w: lives longer than its session allows (%v)", ErrInvalidToken, c.bound)
	}
	return c, nil
}

// lookup makes the one lookup of a token under sessions: its jti, its
// session, its subject's cutoff, and the ids in more (whose ends go to
// moreUntil). It reports whether the jti is revoked, and whether the
// session or subject is.
func (g *Guard) lookup(ctx context.Context, t *Token, c sessionClaims, more []string, moreUntil []time.Time) (jtiRevoked, sessionRevoked bool, err error) {
	var idBuf [5]string
	var untilBuf [5]time.Time
	ids := append(idBuf[:0], t.ID)
	sidAt, subAt := -1, -1
	if c.sid != "" {
		sidAt, ids = len(ids), append(ids, sessionID(c.sid))
	}
	if c.sub != "" {
		subAt, ids = len(ids), append(ids, subjectID(c.sub))
	}
	moreAt := len(ids)
	ids = append(ids, more...)
	until := untilBuf[:0]
	if len(ids) > len(untilBuf) {
		until = make([]time.Time, 0, len(ids))
	}
	until = until[:len(ids)]
	if err := blocklist.RevokedUntilEach(ctx, g.sess.expiry, ids, until); err != nil {
		return false, false, err
	}
	copy(moreUntil, until[moreAt:])
	if sidAt > 0 && !until[sidAt].IsZero() {
		sessionRevoked = true
	}
	if subAt > 0 && !until[subAt].IsZero() && g.beforeCutoff(c.iatMs, until[subAt]) {
		sessionRevoked = true // issued before the subject logged out everywhere
	}
	return !until[0].IsZero(), sessionRevoked, nil
}

// beforeCutoff reports whether a token issued at iatMs falls under the
// LogoutAll whose entry ends at until. The entry ends subjectSpan after the
// cutoff, whatever the settings of the Guard that wrote it. A token whose
// iat is less than the leeway after the cutoff is refused too: its issuer's
// clock may be ahead by up to the leeway, so it may have been minted before
// LogoutAll.
func (g *Guard) beforeCutoff(iatMs int64, until time.Time) bool {
	cutoffMs := until.UnixMilli() - subjectSpan.Milliseconds()
	return iatMs < cutoffMs+g.leeway.Milliseconds()
}

// checkSession is check under sessions, for a token check has already
// found not to be a refresh token: its jti, session and subject must not be
// revoked.
func (g *Guard) checkSession(ctx context.Context, t *Token) (*Token, error) {
	c, err := g.sessionClaims(t)
	if err != nil {
		return nil, err
	}
	jtiRevoked, sessionRevoked, err := g.lookup(ctx, t, c, nil, nil)
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
	now := g.sess.now()
	return g.mint(sub, rand.Text()+g.sess.sidSuffix, g.sess.refreshTTL, extra, now.UnixMilli(), "", now)
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

// mint signs a new pair of the session sid whose tokens may live bound,
// issued at iatMs. With a parent, the tokens are the successors of the
// refresh token with that id, and their jtis are derived from it (see
// successorJTI); without one, they are drawn at random. now is when the
// pair is handed out. Everything else in the tokens comes from the
// arguments and the Guard's settings, so two Guards with the same settings
// mint the same strings from the same arguments when the signing method is
// deterministic.
func (g *Guard) mint(sub, sid string, bound time.Duration, extra jwt.MapClaims, iatMs int64, parent string, now time.Time) (*Pair, error) {
	s := g.sess
	refreshTTL := min(s.refreshTTL, bound)
	accessTTL := min(s.accessTTL, refreshTTL)
	issued := time.UnixMilli(iatMs)
	p := &Pair{
		mintedAt:         now,
		SessionID:        sid,
		AccessExpiresAt:  issued.Add(accessTTL).Truncate(time.Second),
		RefreshExpiresAt: issued.Add(refreshTTL).Truncate(time.Second),
	}
	// iat to the millisecond (RFC 7519 allows a fractional NumericDate), so
	// that a token minted right after LogoutAll is told from one minted
	// right before.
	iat := float64(iatMs) / 1000
	sign := func(use string, exp time.Time) (string, error) {
		c := jwt.MapClaims{}
		for k, v := range extra {
			c[k] = v
		}
		jti := rand.Text()
		if parent != "" {
			jti = successorJTI(use, parent)
		}
		c["sub"], c["jti"], c[ClaimSessionID], c[ClaimTokenUse] = sub, jti, sid, use
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
// records the exchange: each refresh token works once (rotation).
//
// The token must verify as the middleware's tokens do, carry token_use
// "refresh" and a sid, and neither it, its session nor its subject may be
// revoked; otherwise the error wraps ErrInvalidToken or ErrRevoked. A
// refresh token that was already exchanged is a sign of theft (or of a
// client refreshing twice at once; only one of two concurrent refreshes of
// one token can win, across every process sharing the Store). Within
// Sessions.GracePeriod of its first exchange, while its successor has not
// been exchanged, Refresh answers with that successor pair again.
// Otherwise it revokes the whole session, so the thief's and the owner's
// tokens all stop working, and returns an error wrapping ErrRefreshReused
// and ErrRevoked. A Store failure is returned wrapped, and nothing is
// minted.
//
// The new tokens carry the iat of the moment before the lookup that found
// the session alive (for a replay within the grace period, that of the
// first exchange), so a LogoutAll that overlaps the refresh covers them,
// and they live no longer than the session's bound from then.
//
// It costs two round trips to a networked Store (the lookup, then the
// atomic record of the exchange), three when another call won the
// exchange, four when reuse is detected.
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
	s := g.sess
	// Taken before the lookup: a revocation the lookup missed happened
	// after it, so the tokens minted below are issued before that
	// revocation and fall under it.
	start := s.now()
	startMs := start.UnixMilli()
	succ := successorJTI(TokenUseRefresh, t.ID)
	state := []string{exchangedID(t.ID), exchangedID(succ)}
	var until [2]time.Time // when the records of t's and its successor's exchanges end
	jtiRevoked, sessionRevoked, err := g.lookup(ctx, t, c, state, until[:])
	if err != nil {
		return nil, fmt.Errorf("jwtguard: refresh: checking the blocklist: %w", err)
	}
	if sessionRevoked || jtiRevoked {
		return nil, ErrRevoked
	}
	extra := jwt.MapClaims{}
	for k, v := range t.Claims {
		if !reservedClaim(k) {
			extra[k] = v
		}
	}
	// The record of the exchange ends this long after the exchange, so a
	// reader finds when it happened: long enough to cover t for as long as
	// any Guard could accept it (exp plus MaxLeeway, t's iat being at most
	// MaxLeeway after the exchange's clock). It is sized by the session's
	// layout bound, not by t's own exp − iat: a grace replay answered by a
	// Guard with another RefreshTTL mints a second copy of a successor, with
	// the same jti and another life, and both copies must read the one
	// record alike.
	lifeMs := (layoutBound(c.sid) + layoutPad).Milliseconds()
	// A successor already exchanged while no record of t's own exchange is
	// seen cannot come from an honest client: reuse, never a first exchange.
	if until[0].IsZero() && until[1].IsZero() {
		first, err := s.once.RevokeOnce(ctx, state[0], time.UnixMilli(startMs+lifeMs))
		if err != nil {
			return nil, fmt.Errorf("jwtguard: refresh: recording the exchange: %w", err)
		}
		if first {
			s.refreshes.Add(1)
			return g.mint(c.sub, c.sid, c.bound, extra, startMs, t.ID, start)
		}
		// Another call won the exchange: read its record.
		if err := blocklist.RevokedUntilEach(ctx, s.expiry, state, until[:]); err != nil {
			return nil, fmt.Errorf("jwtguard: refresh: reading the exchange: %w", err)
		}
	}
	if s.grace > 0 && !until[0].IsZero() && until[1].IsZero() {
		exchangedMs := until[0].UnixMilli() - lifeMs
		if startMs <= exchangedMs+s.grace.Milliseconds() {
			// The successor carries the iat of the first exchange, whose
			// lookup found the session alive then, so every revocation it
			// missed came later and covers the successor. A Store may
			// report an end up to a second late (none of this module
			// does); never mint an iat in the future.
			s.graceReplays.Add(1)
			return g.mint(c.sub, c.sid, c.bound, extra, min(exchangedMs, s.now().UnixMilli()), t.ID, start)
		}
	}
	s.reuses.Add(1)
	g.obs.reuseDetected(ctx, c.sid, c.sub)
	if err := g.RevokeSession(ctx, c.sid); err != nil {
		return nil, fmt.Errorf("%w: %w; and revoking its session failed: %w", ErrRefreshReused, ErrRevoked, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrRefreshReused, ErrRevoked)
}

// RevokeSession revokes every token carrying the session id sid, access and
// refresh, minted before or after the call, for as long as any of them could
// be accepted by any Guard sharing the Store: the entry lasts the session's
// bound (declared by its sid; MaxRefreshTTL for a sid that declares none)
// plus twice MaxLeeway from now, whatever this Guard's settings. It needs
// WithSessions. A Store failure is returned wrapped.
func (g *Guard) RevokeSession(ctx context.Context, sid string) error {
	if g.sess == nil {
		return errors.New("jwtguard: RevokeSession needs WithSessions")
	}
	if sid == "" {
		return errors.New("jwtguard: RevokeSession: empty session id")
	}
	exp := g.sess.now().Add(layoutBound(sid) + layoutPad)
	err := g.store.Revoke(ctx, sessionID(sid), exp)
	g.obs.revoked(ctx, KindSession, err)
	if err != nil {
		return fmt.Errorf("jwtguard: revoking session: %w", err)
	}
	return nil
}

// LogoutAll logs the subject sub out everywhere: every token whose sub is
// sub and whose iat is before the call is refused from then on, by every
// Guard sharing the Store, whatever its session and whatever each Guard's
// settings. So is a token whose iat is less than the checking Guard's
// leeway after the call, since its issuer's clock may be ahead by that
// much: with a leeway L, a login in the L after LogoutAll returns gets
// tokens that are refused (never with the default leeway of zero). It
// writes one entry, which lasts MaxRefreshTTL plus twice MaxLeeway past the
// cutoff (the layout of the package doc), and then waits until the cutoff
// has passed, a millisecond at most with the Stores of this module (at most
// a second with a Store whose RevokedUntil is that late). It needs
// WithSessions. A Store failure is returned wrapped; the logout may or may
// not have been recorded, so retry.
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
	span := subjectSpan.Milliseconds()
	err := g.store.Revoke(ctx, id, time.UnixMilli(cutoff+span))
	g.obs.revoked(ctx, KindSubject, err)
	if err != nil {
		return fmt.Errorf("jwtguard: logging out everywhere: %w", err)
	}
	// Readers derive the cutoff from when the entry ends, which a Store may
	// report late: wait until the cutoff they see has passed, so a token
	// minted after we return is never refused.
	until, err := s.expiry.RevokedUntil(ctx, id)
	if err != nil {
		return fmt.Errorf("jwtguard: logging out everywhere: reading the cutoff back: %w", err)
	}
	seen := time.UnixMilli(until.UnixMilli() - span)
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
