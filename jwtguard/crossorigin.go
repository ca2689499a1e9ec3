package jwtguard

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrCrossOrigin means a request that would act with the token cookie came
// from another origin with an unsafe method: a cross-site request forgery,
// refused by the Guard's http.CrossOriginProtection (see
// WithCrossOriginProtection). Logout and TokenFromRequest return an error
// wrapping it; the middleware and LogoutHandler answer such requests 403.
var ErrCrossOrigin = errors.New("jwtguard: cross-origin request")

// WithCrossOriginProtection sets the cross-origin protection the Guard
// applies to requests whose token comes from the cookie: the middleware,
// LogoutHandler, Logout and TokenFromRequest refuse such a request when its
// method is not safe (not GET, HEAD or OPTIONS) and p.Check fails. The
// middleware and LogoutHandler answer with p's deny handler (403 Forbidden
// by default; see http.CrossOriginProtection.SetDenyHandler). Requests
// with a bearer Authorization header are never checked: a browser sends no
// such header to another site on its own.
//
// The default is http.NewCrossOriginProtection(): no trusted origins, no
// bypass patterns. Give a p with AddTrustedOrigin for a front end served
// from another origin, or behind a proxy that rewrites Host (browsers
// without Sec-Fetch-Site are judged by Origin against Host). A nil p makes
// New return an error.
func WithCrossOriginProtection(p *http.CrossOriginProtection) Option {
	return func(c *config) {
		if p == nil {
			c.fail("WithCrossOriginProtection(nil): protection must not be nil")
			return
		}
		c.crossOrigin = p
	}
}

// safeMethod reports whether a request of this method changes nothing, so
// that http.CrossOriginProtection lets it through whatever its origin.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// cookieCheckNeeded reports whether r would act with the token cookie and
// with an unsafe method, so that it must pass the cross-origin check.
func (g *Guard) cookieCheckNeeded(r *http.Request) bool {
	if safeMethod(r.Method) {
		return false
	}
	_, fromCookie, err := g.extract(r)
	return err == nil && fromCookie
}

// crossOriginChecked returns h behind the cross-origin check for the
// requests that need it; the others reach h directly. Both handlers are
// built once, so a request allocates nothing for the check.
func (g *Guard) crossOriginChecked(h http.Handler) http.Handler {
	protected := g.crossOrigin.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.cookieCheckNeeded(r) {
			// protected checks again and answers with p's deny handler,
			// which Check cannot reach; this check is for the metrics.
			if err := g.crossOrigin.Check(r); err != nil {
				g.obs.checked(r.Context(), time.Now(), fmt.Errorf("%w: %w", ErrCrossOrigin, err), false)
			}
			protected.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkCrossOrigin returns an error wrapping ErrCrossOrigin when r acts
// with the token cookie (fromCookie) from another origin with an unsafe
// method.
func (g *Guard) checkCrossOrigin(r *http.Request, fromCookie bool) error {
	if !fromCookie || safeMethod(r.Method) {
		return nil
	}
	if err := g.crossOrigin.Check(r); err != nil {
		return fmt.Errorf("%w: %w", ErrCrossOrigin, err)
	}
	return nil
}

// TokenFromRequest returns the token of r as the middleware takes it: from
// a bearer Authorization header (RFC 6750 section 2.1, scheme
// case-insensitive) or, when r has none, from the token cookie. It does
// not verify the token. The error wraps ErrNoToken when r carries no
// token, ErrInvalidToken for an empty bearer token or more than one
// Authorization header, and ErrCrossOrigin for a cookie token in an unsafe
// cross-origin request (see WithCrossOriginProtection).
func (g *Guard) TokenFromRequest(r *http.Request) (string, error) {
	raw, fromCookie, err := g.extract(r)
	if err != nil {
		return "", err
	}
	if err := g.checkCrossOrigin(r, fromCookie); err != nil {
		return "", err
	}
	return raw, nil
}
