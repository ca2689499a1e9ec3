package jwtguard

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultCookieName is the cookie the Guard reads a token from, when the
// request has no bearer header and WithCookie does not name another.
const DefaultCookieName = "token"

// Option configures a Guard made by New.
type Option func(*config)

// ErrorHandler writes the response to a request the Guard does not serve.
// As the handler of WithErrorHandler it answers a Store failure (a lookup
// in the middleware, or a revocation in LogoutHandler or
// RevocationHandler): err says what failed and wraps the Store's error,
// and the default answers 503 Service Unavailable with a plain text body
// and no detail. As the handler of WithUnauthorizedHandler it answers a
// request without a valid token (401; see there).
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

type config struct {
	algorithms   []string
	issuer       string
	audience     []string
	leeway       time.Duration
	cookie       http.Cookie
	realm        string
	errorHandler ErrorHandler
	unauthorized ErrorHandler // WithUnauthorizedHandler; see unauthorized.go
	failOpen     bool
	onError      func(r *http.Request, err error)
	crossOrigin  *http.CrossOriginProtection // WithCrossOriginProtection; see crossorigin.go
	now          func() time.Time
	sessions     *Sessions        // WithSessions; see session.go
	revocation   RevocationPolicy // WithRevocationPolicy; see handlers.go
	observe      observeConfig    // WithLogger, WithMeterProvider; see observe.go
	errs         []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithAlgorithms sets the signing algorithms a token may use, by their JWS
// names ("HS256", "RS256", "ES256", "EdDSA", ...). It is required: New
// returns an error without it, for an algorithm golang-jwt does not know,
// and for "none". Give the algorithms your issuer uses and no others, and
// let the key function return a key of the matching type.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) {
		if len(algs) == 0 {
			c.fail("WithAlgorithms(): at least one algorithm is required")
			return
		}
		for _, alg := range algs {
			switch {
			case alg == jwt.SigningMethodNone.Alg():
				c.fail("WithAlgorithms: %q is never accepted", alg)
				return
			case jwt.GetSigningMethod(alg) == nil:
				c.fail("WithAlgorithms: unknown algorithm %q", alg)
				return
			}
		}
		c.algorithms = append([]string(nil), algs...)
	}
}

// WithIssuer makes the Guard accept only tokens whose iss claim is iss.
// Tokens without iss are then refused. An empty iss makes New return an
// error.
func WithIssuer(iss string) Option {
	return func(c *config) {
		if iss == "" {
			c.fail("WithIssuer(\"\"): issuer must not be empty")
			return
		}
		c.issuer = iss
	}
}

// WithAudience makes the Guard accept only tokens whose aud claim names at
// least one of aud. Tokens without aud are then refused. No audience, or an
// empty one, makes New return an error.
func WithAudience(aud ...string) Option {
	return func(c *config) {
		if len(aud) == 0 {
			c.fail("WithAudience(): at least one audience is required")
			return
		}
		for _, a := range aud {
			if a == "" {
				c.fail("WithAudience: audience must not be empty")
				return
			}
		}
		c.audience = append([]string(nil), aud...)
	}
}

// WithLeeway sets the clock skew tolerated when checking exp, nbf and iat
// (default zero). Revocations last until exp plus MaxLeeway, so that a
// token any Guard still accepts under its leeway is never un-revoked early.
// A negative d, or one over MaxLeeway, makes New return an error.
func WithLeeway(d time.Duration) Option {
	return func(c *config) {
		if d < 0 || d > MaxLeeway {
			c.fail("WithLeeway(%v): leeway must be from 0 to MaxLeeway %v", d, MaxLeeway)
			return
		}
		c.leeway = d
	}
}

// WithCookie sets the cookie the Guard reads a token from when the request
// has no bearer header, and the attributes it gives the cookie in SetCookie
// and when Logout clears it. Only Name, Path, Domain, Secure and SameSite
// are used; an empty Path means "/", a zero SameSite means
// http.SameSiteLaxMode, and the cookie is always HttpOnly. The default is
// http.Cookie{Name: DefaultCookieName}. An invalid cookie name makes New
// return an error.
func WithCookie(cookie http.Cookie) Option {
	return func(c *config) {
		if err := (&http.Cookie{Name: cookie.Name, Value: "x"}).Valid(); err != nil {
			c.fail("WithCookie: %v", err)
			return
		}
		c.cookie = http.Cookie{
			Name:     cookie.Name,
			Path:     cookie.Path,
			Domain:   cookie.Domain,
			Secure:   cookie.Secure,
			SameSite: cookie.SameSite,
		}
	}
}

// WithRealm adds realm="realm" to every WWW-Authenticate challenge. The
// realm must be printable ASCII without '"' or '\', or New returns an error.
func WithRealm(realm string) Option {
	return func(c *config) {
		for i := 0; i < len(realm); i++ {
			if b := realm[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
				c.fail("WithRealm(%q): realm must be printable ASCII without '\"' or '\\'", realm)
				return
			}
		}
		c.realm = realm
	}
}

// WithErrorHandler sets the handler that answers a request when the Store
// fails and the Guard fails closed. It must write the response. A nil h
// makes New return an error.
func WithErrorHandler(h ErrorHandler) Option {
	return func(c *config) {
		if h == nil {
			c.fail("WithErrorHandler(nil): handler must not be nil")
			return
		}
		c.errorHandler = h
	}
}

// WithFailOpen makes the middleware let a request through, as if its token
// were not revoked, when the Store cannot answer, after calling onError with
// the error (onError must not write a response). A logged-out token then
// works again for as long as the Store is down: choose this only when an
// outage of the blocklist must not become an outage of the service, and
// watch the errors. Revocations (Logout, LogoutHandler, RevocationHandler)
// still fail closed: a logout that was not recorded is never reported as
// done. A nil onError makes New return an error, so failures are never
// silent.
func WithFailOpen(onError func(r *http.Request, err error)) Option {
	return func(c *config) {
		if onError == nil {
			c.fail("WithFailOpen(nil): a function to report store errors is required")
			return
		}
		c.failOpen = true
		c.onError = onError
	}
}

// WithClock sets the clock the Guard checks exp, nbf and iat against
// (default time.Now). It is meant for tests. A nil now makes New return an
// error.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("WithClock(nil): clock must not be nil")
			return
		}
		c.now = now
	}
}

func (c *config) err() error {
	if err := errors.Join(c.errs...); err != nil {
		return fmt.Errorf("jwtguard: %w", err)
	}
	return nil
}
