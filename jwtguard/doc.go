// Package jwtguard is net/http middleware that verifies JWTs with
// github.com/golang-jwt/jwt/v5 and refuses the ones revoked in a
// blocklist.Store, so that logging out ends a token for good.
//
// Choose it when a net/http service accepts JWTs as bearer tokens or in a
// cookie and must honour logout before the tokens expire. A request costs
// one signature verification (a few microseconds for HS256, more for RSA
// and ECDSA) plus one IsRevoked on the Store: about 100 ns through the
// cached package or memorystore, one round trip to Redis or memcached
// without a cache. Durability is the Store's.
//
// # What a request goes through
//
// [Guard.Middleware] takes the token from the Authorization header
// ("Bearer <token>", scheme case-insensitive) or, when the request has no
// bearer header, from a cookie (named "token" unless [WithCookie] says
// otherwise). It then
//
//  1. verifies the signature with one of the algorithms given to
//     [WithAlgorithms], which New requires: there is no default that accepts
//     any alg, and "none" is refused;
//  2. validates the header and claims: a crit header is refused (RFC 7515
//     section 4.1.11: the Guard understands no extension); exp is required
//     and must not have passed, nbf and iat when present, iss and aud when
//     [WithIssuer] and [WithAudience] ask for them, all within the leeway
//     of [WithLeeway]. A date (exp, nbf, iat) must be a number from the
//     year 1 to the end of the year 9999; it is read to the millisecond,
//     and 0 counts as absent, as in golang-jwt. Any other value makes the
//     token invalid, so no date ever wraps around in a conversion;
//  3. derives the token id (see below) and asks the Store whether it is
//     revoked;
//  4. calls the next handler with a copy of the request whose context holds
//     the verified token ([TokenFromContext], [ClaimsFromContext]).
//
// Refusals follow RFC 6750: a request without a token gets 401 with
// "WWW-Authenticate: Bearer"; a token that fails any check gets 401 with
// `Bearer error="invalid_token"` and no detail that would help an attacker;
// a revoked token gets 401 with `Bearer error="invalid_token",
// error_description="token revoked"`. [WithUnauthorizedHandler] writes
// these answers in your API's own form (JSON, say) after the challenge is
// set. [Guard.TokenFromRequest] reads a request's token as the middleware
// does, for code that cannot wrap an http.Handler.
//
// # Cross-site requests
//
// A browser sends the token cookie with requests that another site's page
// makes it send. When the token comes from the cookie and the method is not
// safe (not GET, HEAD or OPTIONS), the middleware and [Guard.LogoutHandler]
// first ask an http.CrossOriginProtection (Sec-Fetch-Site, or Origin
// against Host) and answer 403 to a cross-origin request; [Guard.Logout]
// and [Guard.TokenFromRequest] return an error wrapping [ErrCrossOrigin].
// Bearer-header requests are not checked. [WithCrossOriginProtection]
// trusts other origins. Handlers that set the cookie without a token (a
// login) are yours to protect, with the same http.CrossOriginProtection.
//
// # When the Store fails
//
// A Store that cannot answer fails the request closed: the error goes to the
// [ErrorHandler] (by default a plain 503 Service Unavailable) and the next
// handler is not called. [WithFailOpen] lets such requests through instead,
// and hands each error to a function you give it.
//
// # Token ids
//
// The id revoked and checked is the token's jti claim. A token without a
// jti (or with an empty one) is known by a digest of its signature:
//
//	"sig:" + base64url(SHA-256(signature bytes))
//
// without padding, where the signature bytes are the decoded third segment
// of the token. For ES256, ES384 and ES512 the s half of the signature is
// first replaced by min(s, n-s), n being the curve order: ECDSA signatures
// are malleable, and (r, n-s) verifies as well as (r, s), so without this
// step a client could turn a revoked token into an unrevoked twin. The other
// algorithms of golang-jwt admit one signature per message. Issuers should
// not mint jti values that start with "sig:". A jti longer than
// blocklist.MaxIDLen bytes, or a jti that is not a string, makes the token
// invalid (401), never a Store error.
//
// # Logout and revocation
//
// [Guard.Logout] and [Guard.LogoutHandler] revoke the token of the request
// until its exp plus the leeway, so a token the parser would still accept
// under leeway is never un-revoked early, and clear the cookie.
// [Guard.RevocationHandler] is an RFC 7009 endpoint; [Guard.Revoke] revokes
// any token string for custom flows. Only tokens that verify are revoked: a
// token with a bad signature cannot be presented anyway, and an expired one
// needs no revocation.
//
// # Sessions: refresh tokens, reuse detection, log out everywhere
//
// [WithSessions] turns on sessions. [Guard.NewSession] mints, at login, an
// access token and a refresh token sharing a session id (claim "sid") and
// told apart by the claim "token_use" ("access" or "refresh"): the
// middleware refuses refresh tokens (even on a Guard without sessions, so a
// service that only verifies cannot be handed one) and [Guard.Refresh]
// refuses access tokens. Refresh exchanges a refresh token for a new pair of the same
// session and revokes the old one with blocklist.OnceStore's RevokeOnce, so
// a refresh token works once, even when presented twice at the same moment
// to different processes. A refresh token presented again (stolen, or
// replayed) revokes its whole session and gets an error wrapping
// [ErrRefreshReused]. [Guard.RevokeSession] ends one session;
// [Guard.LogoutAll] ends every token of a subject issued before the call.
// Logout and the revocation handlers end the whole session of a token that
// has a sid.
//
// Under sessions every request checks three ids in one call to the Store
// (blocklist.BatchStore: one round trip to Redis or memcached, one local
// read through the cached package):
//
//	jti                  the token itself
//	"sid:" + sid         its session, revoked until RefreshTTL+leeway from the revocation
//	"sub:" + sub         its subject's cutoff (LogoutAll), see below
//
// A sid or sub that would make an id longer than blocklist.MaxIDLen is
// replaced by "sid#" or "sub#" and the unpadded base64url SHA-256 of the
// value. A token whose jti starts with "sig:", "sid:", "sid#", "sub:" or
// "sub#" is invalid, so no jti ever meets these ids.
//
// LogoutAll at time c (in milliseconds, rounded up) revokes "sub:"+sub until
// c + RefreshTTL + leeway: exactly as long as a token issued before c can
// live, since under sessions a token whose exp is more than RefreshTTL after
// its iat is invalid. A check reads when that entry ends, subtracts
// RefreshTTL + leeway to get c back, and refuses the token if its iat is
// before c. Tokens must therefore carry iat; the Guard writes it to the
// millisecond (a fractional NumericDate, which RFC 7519 allows), so a login
// right after LogoutAll works. A token minted elsewhere with a whole-second
// iat is refused if minted in the same second as, but after, LogoutAll. All
// Guards sharing a Store must use the same RefreshTTL and leeway, and
// clocks that agree.
package jwtguard
