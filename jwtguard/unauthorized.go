package jwtguard

import "net/http"

// WithUnauthorizedHandler sets the handler that writes the 401 answer to a
// request without a valid token, in the middleware and LogoutHandler: err
// wraps ErrNoToken, ErrInvalidToken or ErrRevoked, and carries detail for
// logs, never for clients. Before h runs, the Guard has set the RFC 6750
// WWW-Authenticate challenge that fits err and Cache-Control: no-store, so
// a custom body (JSON, say) keeps them; h must write the status, normally
// 401, and the body. The default answers 401 with a plain text body and
// no detail. A nil h makes New return an error.
func WithUnauthorizedHandler(h ErrorHandler) Option {
	return func(c *config) {
		if h == nil {
			c.fail("WithUnauthorizedHandler(nil): handler must not be nil")
			return
		}
		c.unauthorized = h
	}
}

func unauthorized(w http.ResponseWriter, _ *http.Request, _ error) {
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}
