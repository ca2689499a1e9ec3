package jwtguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// maxRevocationBody bounds the form RevocationHandler reads: a token and a
// hint, with room for large tokens.
const maxRevocationBody = 64 << 10

// Revoke verifies raw (signature and claims, as the middleware does, but
// without asking whether it is already revoked, and accepting refresh
// tokens) and revokes it until its exp plus MaxLeeway; under sessions, a
// token with a sid takes its whole session with it, as RevokeSession does.
// Revoking a revoked token again is not an error. A token that does not
// verify gets an error wrapping ErrInvalidToken and nothing is stored: an
// expired token needs no revocation. A Store failure is returned wrapped.
func (g *Guard) Revoke(ctx context.Context, raw string) error {
	t, err := g.parse(raw)
	if err != nil {
		return err
	}
	if g.sess != nil {
		// The session rules the middleware applies, above all the reserved
		// jti prefixes: revoking a jti "sub:alice" would log alice out.
		if _, err := g.sessionClaims(t); err != nil {
			return err
		}
	}
	return g.revoke(ctx, t)
}

func (g *Guard) revoke(ctx context.Context, t *Token) error {
	if sid := g.sessionOf(t); sid != "" {
		return g.RevokeSession(ctx, sid) // the token and the rest of its session
	}
	// MaxLeeway, not this Guard's leeway: a Guard with a larger one may
	// accept the token that much longer.
	err := g.store.Revoke(ctx, t.ID, t.ExpiresAt.Add(MaxLeeway))
	g.obs.revoked(ctx, KindToken, err)
	if err != nil {
		return fmt.Errorf("jwtguard: revoking: %w", err)
	}
	return nil
}

// Logout revokes the token of r until its exp plus MaxLeeway and clears
// the token cookie on w; under sessions, a token with a sid takes its whole
// session with it (refresh token included), as RevokeSession does. It is
// the building block of LogoutHandler, for
// handlers that answer in their own way (a redirect, a JSON body).
//
// The token is the one the middleware put in r's context; without the
// middleware, Logout takes it from r and verifies it as the middleware
// would, and returns an error wrapping ErrNoToken, ErrInvalidToken or
// ErrRevoked when there is no valid token, and ErrCrossOrigin when the
// token comes from the cookie in an unsafe cross-origin request (see
// WithCrossOriginProtection). When the Store fails, the error
// wraps its failure and the cookie is left alone, so the client can retry.
// Logout writes only a Set-Cookie header; the caller writes the response.
func (g *Guard) Logout(w http.ResponseWriter, r *http.Request) error {
	t, ok := TokenFromContext(r.Context())
	if !ok {
		raw, err := g.TokenFromRequest(r)
		if err != nil {
			return err
		}
		if t, err = g.Verify(r.Context(), raw); err != nil {
			return err
		}
	}
	if err := g.revoke(r.Context(), t); err != nil {
		return err
	}
	g.clearCookie(w)
	return nil
}

// LogoutHandler returns a handler that logs the request's token out with
// Logout and answers 204 No Content. A request without a valid token gets
// the middleware's 401; a Store failure goes to the ErrorHandler (503 by
// default), whether or not the Guard fails open. A request whose token
// comes from the cookie must pass the cross-origin check, as in the
// middleware, or gets 403. Mount it on POST, behind the middleware or not:
// a GET would let another site log users out with a link.
func (g *Guard) LogoutHandler() http.Handler {
	return g.crossOriginChecked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := g.Logout(w, r)
		switch {
		case err == nil:
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, ErrCrossOrigin):
			// Only when the trusted origins changed since the check above.
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		case errors.Is(err, ErrNoToken), errors.Is(err, ErrInvalidToken), errors.Is(err, ErrRevoked):
			g.refuse(w, r, err)
		default:
			g.errorHandler(w, r, err)
		}
	}))
}

// RevocationPolicy decides whether the caller of RevocationHandler may
// revoke target. caller is the verified token the request carries (the
// middleware's, or else the request's bearer header or cookie), or nil when
// it carries none: a policy that authenticates callers otherwise (mutual
// TLS, a client secret) reads them from r. target is the token to revoke,
// verified; it may be a refresh token. A policy must not write to r's
// body, and must be safe for concurrent use.
type RevocationPolicy func(r *http.Request, caller, target *Token) bool

// SameSubject is the default RevocationPolicy: the caller may revoke a
// token whose sub claim is a non-empty string equal to the sub of its own
// token, from the same issuer (iss claims equal strings, or both absent:
// RFC 7519 makes a sub unique only within its issuer). A token without sub
// can be revoked by nobody through RevocationHandler (Revoke and
// LogoutHandler still end it).
func SameSubject(_ *http.Request, caller, target *Token) bool {
	if caller == nil || target == nil {
		return false
	}
	a, _ := caller.Claims["sub"].(string)
	b, _ := target.Claims["sub"].(string)
	if a == "" || a != b {
		return false
	}
	issA, okA := caller.Claims["iss"]
	issB, okB := target.Claims["iss"]
	if !okA || !okB {
		return okA == okB
	}
	sA, isStrA := issA.(string)
	sB, isStrB := issB.(string)
	return isStrA && isStrB && sA == sB
}

// WithRevocationPolicy sets who may revoke which token through
// RevocationHandler (default SameSubject). An administrator policy keeps
// the default and adds a role, for example:
//
//	jwtguard.WithRevocationPolicy(func(r *http.Request, caller, target *jwtguard.Token) bool {
//		return jwtguard.SameSubject(r, caller, target) || caller != nil && caller.Claims["role"] == "admin"
//	})
//
// A nil policy makes New return an error.
func WithRevocationPolicy(policy RevocationPolicy) Option {
	return func(c *config) {
		if policy == nil {
			c.fail("WithRevocationPolicy(nil): policy must not be nil")
			return
		}
		c.revocation = policy
	}
}

// RevocationHandler returns an OAuth 2.0 token revocation endpoint (RFC
// 7009). It takes a POST with an application/x-www-form-urlencoded body
// holding token (required) and token_type_hint (accepted and ignored: the
// Guard knows one kind of token); another method gets 405, a request
// without a token parameter 400 with {"error":"invalid_request"}.
//
// RFC 7009 revokes a token only for a caller entitled to it. The caller is
// the verified token of the request: the one the middleware put in the
// context, or else the request's own bearer header or cookie, verified as
// the middleware would (so the handler may be mounted with or without the
// middleware). A caller whose token is invalid or revoked, or a request
// without a token that the RevocationPolicy (see WithRevocationPolicy;
// SameSubject by default) does not let through, gets 401 with
// {"error":"invalid_client"} and the middleware's WWW-Authenticate
// challenge. Then the token to revoke is verified as Revoke does: one that
// does not verify is left alone and the answer is 200, revealing nothing
// about it (RFC 7009 section 2.2). A valid token the policy does not let
// the caller revoke gets 400 with {"error":"unauthorized_client"} (RFC 7009
// section 2.2.1, RFC 6749 section 5.2). In both refusals nothing is stored.
// Otherwise the token is revoked as Revoke does (with its whole session
// under sessions) and the answer is 200 with an empty body. A Store
// failure (checking the caller, or revoking) goes to the ErrorHandler (503
// by default, as section 2.2.1 allows): the revocation was not recorded
// and the client must retry. A caller whose token comes from the cookie
// must pass the cross-origin check, as in the middleware, or gets 403.
func (g *Guard) RevocationHandler() http.Handler {
	return g.crossOriginChecked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		form, err := readForm(r)
		if err != nil || len(form["token"]) != 1 || form.Get("token") == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		caller, ok := TokenFromContext(r.Context())
		if !ok {
			raw, err := g.TokenFromRequest(r)
			switch {
			case errors.Is(err, ErrNoToken):
				caller = nil
			case err != nil:
				g.refuseClient(w, err)
				return
			default:
				if caller, err = g.Verify(r.Context(), raw); err != nil {
					if errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrRevoked) {
						g.refuseClient(w, err)
					} else {
						g.errorHandler(w, r, err)
					}
					return
				}
			}
		}
		target, err := g.parse(form.Get("token"))
		if err == nil && g.sess != nil {
			_, err = g.sessionClaims(target) // the rules Revoke applies
		}
		if err != nil {
			w.WriteHeader(http.StatusOK) // nothing to revoke
			return
		}
		if !g.revocationPolicy(r, caller, target) {
			if caller == nil {
				g.refuseClient(w, ErrNoToken)
			} else {
				oauthError(w, http.StatusBadRequest, "unauthorized_client")
			}
			return
		}
		if err := g.revoke(r.Context(), target); err != nil {
			g.errorHandler(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
}

// refuseClient answers an RFC 7009 caller that is not authenticated: 401
// with the middleware's challenge and {"error":"invalid_client"} (RFC 6749
// section 5.2).
func (g *Guard) refuseClient(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", g.challenge(err))
	oauthError(w, http.StatusUnauthorized, "invalid_client")
}

// oauthError writes an RFC 6749 section 5.2 error response.
func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"error":"`+code+`"}`+"\n")
}

// readForm reads the url-encoded body of r without modifying r (as
// r.ParseForm would), and without looking at the query string: a token must
// not travel in a URL.
func readForm(r *http.Request) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRevocationBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxRevocationBody {
		return nil, fmt.Errorf("body over %d bytes", maxRevocationBody)
	}
	return url.ParseQuery(string(body))
}

// SetCookie sets the token cookie on w to token, expiring at expires, with
// the attributes of WithCookie; it is HttpOnly. Use it when issuing tokens,
// so that Logout clears the same cookie.
func (g *Guard) SetCookie(w http.ResponseWriter, token string, expires time.Time) {
	c := g.cookie
	c.Value = token
	c.Expires = expires
	http.SetCookie(w, &c)
}

func (g *Guard) clearCookie(w http.ResponseWriter) {
	c := g.cookie
	c.MaxAge = -1
	c.Expires = time.Unix(1, 0)
	http.SetCookie(w, &c)
}
