package jwtguard

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
)

// Errors returned by Verify, Revoke and Logout. Test for them with
// errors.Is; the error text adds detail meant for logs, never for clients.
var (
	// ErrNoToken means the request carries no token: no bearer
	// Authorization header and no token cookie.
	ErrNoToken = errors.New("jwtguard: no token")

	// ErrInvalidToken means the token failed a check: malformed, bad
	// signature, algorithm not allowed, a crit header, expired, not yet
	// valid (nbf), issued in the future (iat), a date out of range (see
	// the package doc), wrong issuer or audience, missing exp, a jti that
	// is not a string, is longer than blocklist.MaxIDLen bytes or starts
	// with a prefix of the Guard's own ids (see the package doc), or a
	// refresh token (token_use "refresh") where an access token is
	// expected.
	ErrInvalidToken = errors.New("jwtguard: invalid token")

	// ErrRevoked means the token verified but is in the blocklist.
	ErrRevoked = errors.New("jwtguard: token revoked")
)

// idPrefix starts the id of a token that has no jti: "sig:" followed by
// the unpadded base64url SHA-256 of its signature (see the package doc).
const idPrefix = "sig:"

// Token is a token the Guard verified.
type Token struct {
	// Raw is the token as the client sent it.
	Raw string
	// ID is the id the Guard checks and revokes: the jti claim, or "sig:"
	// and a digest of the signature when the token has no jti.
	ID string
	// ExpiresAt is the token's exp claim, to the millisecond.
	ExpiresAt time.Time
	// Claims are the token's claims, decoded from JSON: numbers are
	// float64, arrays []any, objects map[string]any.
	Claims jwt.MapClaims

	// The dates parse checked, in Unix milliseconds; iatMs is valid when
	// hasIat.
	expMs, iatMs int64
	hasIat       bool
}

// Guard verifies JWTs and checks them against a blocklist.Store. Make one
// with New; it is safe for concurrent use.
type Guard struct {
	store   blocklist.Store
	keyFunc jwt.Keyfunc
	parser  *jwt.Parser
	leeway  time.Duration
	cookie  http.Cookie

	errorHandler ErrorHandler
	unauthorized ErrorHandler
	failOpen     bool
	onError      func(r *http.Request, err error)
	crossOrigin  *http.CrossOriginProtection

	sess *sessions // nil unless WithSessions; see session.go

	revocationPolicy RevocationPolicy // RevocationHandler's; SameSubject by default
	obs              *observer        // logs and metrics; see observe.go

	// WWW-Authenticate values, built once by New.
	challengeMissing, challengeInvalid, challengeRevoked string
}

// New returns a Guard that verifies tokens with keyFunc and refuses those
// revoked in store. keyFunc receives the parsed but unverified token and
// returns the key to check its signature with (or a jwt.VerificationKeySet);
// an error from it makes the token invalid. WithAlgorithms is required.
//
// New returns an error for a nil store or keyFunc, for a missing
// WithAlgorithms, and for any invalid option, naming each.
func New(store blocklist.Store, keyFunc jwt.Keyfunc, opts ...Option) (*Guard, error) {
	cfg := config{cookie: http.Cookie{Name: DefaultCookieName}}
	if store == nil {
		cfg.fail("New: store is nil")
	}
	if keyFunc == nil {
		cfg.fail("New: key function is nil")
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if len(cfg.algorithms) == 0 && len(cfg.errs) == 0 {
		cfg.fail("New: WithAlgorithms is required: no algorithm is accepted by default")
	}
	sess := newSessions(&cfg, store)
	if err := cfg.err(); err != nil {
		return nil, err
	}

	popts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // golang-jwt ignores iat without it
		jwt.WithLeeway(cfg.leeway),
	}
	if cfg.issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.issuer))
	}
	if len(cfg.audience) > 0 {
		popts = append(popts, jwt.WithAudience(cfg.audience...))
	}
	if cfg.now != nil {
		popts = append(popts, jwt.WithTimeFunc(cfg.now))
	}
	if cfg.cookie.Path == "" {
		cfg.cookie.Path = "/"
	}
	if cfg.cookie.SameSite == 0 {
		cfg.cookie.SameSite = http.SameSiteLaxMode
	}
	cfg.cookie.HttpOnly = true
	if cfg.errorHandler == nil {
		cfg.errorHandler = serviceUnavailable
	}
	if cfg.revocation == nil {
		cfg.revocation = SameSubject
	}
	if cfg.unauthorized == nil {
		cfg.unauthorized = unauthorized
	}
	if cfg.crossOrigin == nil {
		cfg.crossOrigin = http.NewCrossOriginProtection()
	}

	realm := ""
	if cfg.realm != "" {
		realm = `realm="` + cfg.realm + `"`
	}
	join := func(params ...string) string {
		var nonEmpty []string
		for _, p := range params {
			if p != "" {
				nonEmpty = append(nonEmpty, p)
			}
		}
		if len(nonEmpty) == 0 {
			return "Bearer"
		}
		return "Bearer " + strings.Join(nonEmpty, ", ")
	}

	return &Guard{
		store:            store,
		keyFunc:          keyFunc,
		parser:           jwt.NewParser(popts...),
		leeway:           cfg.leeway,
		cookie:           cfg.cookie,
		errorHandler:     cfg.errorHandler,
		unauthorized:     cfg.unauthorized,
		failOpen:         cfg.failOpen,
		onError:          cfg.onError,
		crossOrigin:      cfg.crossOrigin,
		sess:             sess,
		revocationPolicy: cfg.revocation,
		obs:              newObserver(&cfg, sess),
		challengeMissing: join(realm),
		challengeInvalid: join(realm, `error="invalid_token"`),
		challengeRevoked: join(realm, `error="invalid_token"`, `error_description="token revoked"`),
	}, nil
}

func serviceUnavailable(w http.ResponseWriter, _ *http.Request, _ error) {
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

// Middleware returns a handler that serves a request with next only when it
// carries a valid token that is not revoked, as the package doc describes.
// next receives a copy of the request whose context holds the token; the
// request passed in is never modified. A request whose token comes from the
// cookie and whose method is not safe must pass the cross-origin check (see
// WithCrossOriginProtection), or gets 403.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return g.crossOriginChecked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authed, err := g.Authenticate(r)
		switch {
		case err == nil:
			next.ServeHTTP(w, authed)
		case errors.Is(err, ErrNoToken), errors.Is(err, ErrInvalidToken), errors.Is(err, ErrRevoked):
			g.refuse(w, r, err)
		case errors.Is(err, ErrCrossOrigin):
			// Only when the trusted origins changed since the check above.
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		default:
			g.errorHandler(w, r, err)
		}
	}))
}

// Authenticate is what the middleware does to a request, without writing a
// response, for adapters to other frameworks and protocols: it takes the
// token of r as TokenFromRequest does, verifies it as Verify does, and
// returns a shallow copy of r whose context holds the token
// (TokenFromContext). r is never modified.
//
// Otherwise the request is nil and the error wraps ErrNoToken,
// ErrInvalidToken or ErrRevoked (the middleware answers 401),
// ErrCrossOrigin (403), or the Store's failure (503). When only the Store
// failed and the Guard fails open (WithFailOpen), Authenticate hands the
// error and r to the WithFailOpen function and returns the request with
// the token and a nil error.
func (g *Guard) Authenticate(r *http.Request) (*http.Request, error) {
	raw, err := g.TokenFromRequest(r)
	if err != nil {
		g.obs.checked(r.Context(), time.Now(), err, false)
		return nil, err
	}
	t, err := g.observedCheck(r.Context(), raw, true)
	if err != nil {
		if !g.failOpen || t == nil {
			return nil, err
		}
		g.onError(r, err)
	}
	return r.WithContext(NewContext(r.Context(), t)), nil
}

// Verify does what the middleware does with a token, for flows that are not
// plain HTTP requests (a WebSocket message, a gRPC call): it parses raw,
// checks its signature and claims, and asks the Store whether it is revoked.
// It returns the token when all is well. Otherwise the error wraps
// ErrInvalidToken or ErrRevoked, or wraps the Store's failure, and the token
// is nil.
func (g *Guard) Verify(ctx context.Context, raw string) (*Token, error) {
	t, err := g.observedCheck(ctx, raw, false)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// check is Verify, but returns the verified token along with a Store
// failure, so that the middleware can fail open.
func (g *Guard) check(ctx context.Context, raw string) (*Token, error) {
	t, err := g.parse(raw)
	if err != nil {
		return nil, err
	}
	// With or without sessions: a resource server that never turned them
	// on must not take a long-lived refresh token for an access token.
	if use, _ := t.Claims[ClaimTokenUse].(string); use == TokenUseRefresh {
		return nil, fmt.Errorf("%w: a refresh token is not an access token", ErrInvalidToken)
	}
	if g.sess != nil {
		return g.checkSession(ctx, t)
	}
	revoked, err := g.store.IsRevoked(ctx, t.ID)
	if err != nil {
		return t, fmt.Errorf("jwtguard: checking the blocklist: %w", err)
	}
	if revoked {
		return nil, ErrRevoked
	}
	return t, nil
}

// parse verifies raw without asking the Store.
func (g *Guard) parse(raw string) (*Token, error) {
	claims := jwt.MapClaims{}
	jt, err := g.parser.ParseWithClaims(raw, claims, g.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	// Belt and braces: the parser enforces both already.
	if jt.Method == nil || jt.Method == jwt.SigningMethodNone {
		return nil, fmt.Errorf("%w: unsigned token", ErrInvalidToken)
	}
	// RFC 7515 section 4.1.11: a recipient must refuse a token that names
	// an extension it does not understand as critical. The Guard
	// understands none, so any crit header, well formed or not, is refused.
	if _, ok := jt.Header["crit"]; ok {
		return nil, fmt.Errorf("%w: crit header names extensions the Guard does not understand", ErrInvalidToken)
	}
	// golang-jwt has validated exp, nbf and iat after converting them to
	// int64 seconds, a conversion that wraps out of range (1e19 becomes a
	// date in the past). Read the raw values again and refuse any that the
	// conversion could not hold.
	expMs, hasExp, err := numericDateMs(claims, "exp")
	if err != nil {
		return nil, err
	}
	if !hasExp {
		return nil, fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	if _, _, err := numericDateMs(claims, "nbf"); err != nil {
		return nil, err
	}
	iatMs, hasIat, err := numericDateMs(claims, "iat")
	if err != nil {
		return nil, err
	}
	// iat rounded down, never up: a token issued a fraction of a
	// millisecond before a LogoutAll cutoff must read as before it. The
	// float nearest a whole millisecond (what the Guard writes) counts as
	// that millisecond.
	if hasIat {
		if f, _ := claims["iat"].(float64); f < float64(iatMs)/1000 {
			iatMs--
		}
	}
	id, err := tokenID(jt, claims)
	if err != nil {
		return nil, err
	}
	return &Token{
		Raw: raw, ID: id, ExpiresAt: time.UnixMilli(expMs), Claims: claims,
		expMs: expMs, iatMs: iatMs, hasIat: hasIat,
	}, nil
}

// The range of a NumericDate the Guard accepts: from the year 1 to the
// end of the year 9999, in Unix milliseconds.
const (
	minDateMs = -62135596800 * 1000
	maxDateMs = 253402300800*1000 - 1
)

// numericDateMs returns the NumericDate claim name of claims in Unix
// milliseconds (rounded to the nearest), and whether it is present. A value
// that is not a finite number, or outside the years 1 to 9999, is an error
// wrapping ErrInvalidToken. As golang-jwt does, 0 counts as absent.
func numericDateMs(claims jwt.MapClaims, name string) (int64, bool, error) {
	var f float64
	switch v := claims[name].(type) {
	case nil:
		if _, present := claims[name]; present {
			return 0, false, fmt.Errorf("%w: %s is null", ErrInvalidToken, name)
		}
		return 0, false, nil
	case float64:
		f = v
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false, fmt.Errorf("%w: %s is not a number", ErrInvalidToken, name)
		}
	default:
		return 0, false, fmt.Errorf("%w: %s is not a number", ErrInvalidToken, name)
	}
	if f == 0 {
		return 0, false, nil
	}
	// The comparisons are false for NaN, so NaN fails them too.
	if !(f*1000 >= minDateMs && f*1000 <= maxDateMs) {
		return 0, false, fmt.Errorf("%w: %s out of range", ErrInvalidToken, name)
	}
	ms := int64(math.Round(f * 1000))
	if ms < minDateMs || ms > maxDateMs {
		return 0, false, fmt.Errorf("%w: %s out of range", ErrInvalidToken, name)
	}
	return ms, true, nil
}

// signatureID is the id of a token without jti: see the package doc.
func signatureID(t *jwt.Token) string {
	sig := t.Signature
	if m, ok := t.Method.(*jwt.SigningMethodECDSA); ok {
		sig = lowS(sig, m)
	}
	sum := sha256.Sum256(sig)
	return idPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// lowS returns the ECDSA signature r||s with s replaced by min(s, n-s), so
// that the two signatures that verify for one message get one id.
func lowS(sig []byte, m *jwt.SigningMethodECDSA) []byte {
	var curve elliptic.Curve
	switch m.CurveBits {
	case 256:
		curve = elliptic.P256()
	case 384:
		curve = elliptic.P384()
	case 521:
		curve = elliptic.P521()
	default:
		return sig
	}
	if len(sig) != 2*m.KeySize {
		return sig
	}
	n := curve.Params().N
	s := new(big.Int).SetBytes(sig[m.KeySize:])
	if half := new(big.Int).Rsh(n, 1); s.Cmp(half) <= 0 {
		return sig
	}
	s.Sub(n, s)
	out := make([]byte, len(sig))
	copy(out, sig[:m.KeySize])
	s.FillBytes(out[m.KeySize:])
	return out
}

// extract returns the token of r, the bearer header's or else the
// cookie's, and whether it is the cookie's. A bearer header that holds no
// token is an invalid token, not a missing one; an Authorization header of
// another scheme is ignored.
func (g *Guard) extract(r *http.Request) (raw string, fromCookie bool, err error) {
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		if raw, ok := bearer(auth[0]); ok {
			if raw == "" {
				return "", false, fmt.Errorf("%w: empty bearer token", ErrInvalidToken)
			}
			return raw, false, nil
		}
	default:
		return "", false, fmt.Errorf("%w: %d Authorization headers", ErrInvalidToken, len(auth))
	}
	if c, err := r.Cookie(g.cookie.Name); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, ErrNoToken
}

// bearer returns the token of an Authorization header value of the Bearer
// scheme (RFC 6750 section 2.1), and whether the scheme is Bearer.
func bearer(v string) (string, bool) {
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", true
	}
	if rest[0] != ' ' {
		return "", false // another scheme, such as "Bearerish"
	}
	return strings.Trim(rest, " "), true
}

// challenge returns the RFC 6750 WWW-Authenticate challenge that fits err:
// without an error code when no token was sent, invalid_token otherwise
// (with its own description for a revoked token).
func (g *Guard) challenge(err error) string {
	switch {
	case errors.Is(err, ErrNoToken):
		return g.challengeMissing
	case errors.Is(err, ErrRevoked):
		return g.challengeRevoked
	}
	return g.challengeInvalid
}

// refuse answers 401 with the RFC 6750 challenge that fits err, set before
// the unauthorized handler writes the rest.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", g.challenge(err))
	w.Header().Set("Cache-Control", "no-store")
	g.unauthorized(w, r, err)
}

// tokenID is the id a token is revoked and checked under: its jti, or the
// digest of its signature when it has none (see the package doc, "Token
// ids"). A jti that is not a string, is too long for a Store, or starts
// with a prefix of the Guard's own ids makes the token invalid, in every
// mode: a Guard without sessions sharing the Store with one that has them
// must not write into the session layout.
func tokenID(jt *jwt.Token, claims jwt.MapClaims) (string, error) {
	switch jti := claims["jti"].(type) {
	case nil:
	case string:
		if len(jti) > blocklist.MaxIDLen {
			return "", fmt.Errorf("%w: jti longer than %d bytes", ErrInvalidToken, blocklist.MaxIDLen)
		}
		if reservedJTI(jti) {
			return "", fmt.Errorf("%w: jti starts with a prefix reserved for the Guard's ids", ErrInvalidToken)
		}
		if jti != "" {
			return jti, nil
		}
	default:
		return "", fmt.Errorf("%w: jti is not a string", ErrInvalidToken)
	}
	return signatureID(jt), nil
}
