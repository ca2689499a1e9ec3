package jwtguard

import (
	"context"

	"github.com/golang-jwt/jwt/v5"
)

// contextKey is the key of the verified token in a request's context. It is
// unexported, so only this package can set or read the value.
type contextKey struct{}

// NewContext returns a copy of ctx that carries t, as the middleware passes
// it to the next handler. It is useful to test handlers that sit behind the
// middleware without running it.
func NewContext(ctx context.Context, t *Token) context.Context {
	return context.WithValue(ctx, contextKey{}, t)
}

// TokenFromContext returns the token the middleware verified for this
// request, and whether there is one.
func TokenFromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(contextKey{}).(*Token)
	return t, ok && t != nil
}

// ClaimsFromContext returns the claims of the token the middleware verified
// for this request, and whether there is one.
func ClaimsFromContext(ctx context.Context) (jwt.MapClaims, bool) {
	t, ok := TokenFromContext(ctx)
	if !ok {
		return nil, false
	}
	return t.Claims, true
}
