// Package ginguard puts a jwtguard.Guard in front of gin routes, so that a
// logged-out token is refused by a gin service as by a net/http one.
//
// Middleware runs the Guard's own net/http middleware inside gin: the same
// token extraction (bearer header, then cookie), the same checks and cost
// (one signature verification and one Store lookup), the same answers (401
// with the RFC 6750 challenge through the Guard's unauthorized handler,
// 403 for a cross-origin cookie request, the Guard's error handler when the
// Store fails). A request that passes reaches the next handlers with its
// token both in the gin context (TokenFromContext) and in the request's
// context (jwtguard.TokenFromContext on c.Request.Context()).
//
// The module has its own go.mod, so that the blocklist module needs no
// gin.
package ginguard

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
)

// TokenKey is the gin context key under which Middleware stores the
// verified *jwtguard.Token.
const TokenKey = "jwtguard.token"

// Middleware returns a gin handler that lets a request on to the next
// handlers only when it carries a valid token that is not revoked, exactly
// as g.Middleware does for net/http; otherwise it writes g's answer and
// aborts the chain. The next handlers see c.Request replaced by a copy whose
// context holds the token, and the token under TokenKey. Middleware panics
// when g is nil, as a server set up wrong should fail at start.
func Middleware(g *jwtguard.Guard) gin.HandlerFunc {
	mustGuard(g)
	return func(c *gin.Context) {
		passed := false
		g.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			if t, ok := jwtguard.TokenFromContext(r.Context()); ok {
				c.Set(TokenKey, t)
			}
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

// LogoutHandler returns a gin handler that does what g.LogoutHandler does:
// it revokes the request's token (the one Middleware verified, or else the
// request's own) and clears the cookie, and answers 204; 401, 403 and
// Store failures are answered as there. Mount it on POST. It panics when g
// is nil.
func LogoutHandler(g *jwtguard.Guard) gin.HandlerFunc {
	mustGuard(g)
	h := g.LogoutHandler()
	return func(c *gin.Context) {
		h.ServeHTTP(c.Writer, c.Request)
	}
}

// TokenFromContext returns the token Middleware verified for this request,
// and whether there is one.
func TokenFromContext(c *gin.Context) (*jwtguard.Token, bool) {
	v, ok := c.Get(TokenKey)
	if !ok {
		return nil, false
	}
	t, ok := v.(*jwtguard.Token)
	return t, ok && t != nil
}

// ClaimsFromContext returns the claims of the token Middleware verified
// for this request, and whether there is one.
func ClaimsFromContext(c *gin.Context) (jwt.MapClaims, bool) {
	t, ok := TokenFromContext(c)
	if !ok {
		return nil, false
	}
	return t.Claims, true
}

func mustGuard(g *jwtguard.Guard) {
	if g == nil {
		panic("ginguard: the Guard is nil")
	}
}
