package jwtguard

import (
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// ParseUnverified reads raw without checking its signature or any claim
// but exp, and returns it with the id a Guard checks and revokes (its jti,
// or "sig:" and the digest of its signature) and its exp. It is for an
// operator revoking a leaked token by hand (cmd/blocklist, AdminHandler):
// never trust a token it returns.
//
// The error wraps ErrInvalidToken for a token that cannot be parsed, has
// no exp, has a jti that is not a string or is longer than
// blocklist.MaxIDLen bytes, or has a jti in one of the namespaces the
// Guard keeps for sessions and subjects (revoking such an id would end a
// session or log a subject out, which RevokeSession and LogoutAll do
// explicitly).
func ParseUnverified(raw string) (*Token, error) {
	claims := jwt.MapClaims{}
	jt, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if jt.Method == nil || jt.Method == jwt.SigningMethodNone || len(jt.Signature) == 0 {
		return nil, fmt.Errorf("%w: unsigned token", ErrInvalidToken)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	id, err := tokenID(jt, claims)
	if err != nil {
		return nil, err
	}
	return &Token{Raw: raw, ID: id, ExpiresAt: exp.Time, Claims: claims}, nil
}
