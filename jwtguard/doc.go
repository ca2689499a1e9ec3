// Package jwtguard is net/http middleware that verifies JWTs with
// github.com/golang-jwt/jwt/v5 and refuses the ones revoked in a
// blocklist.Store, so that logging out ends a token for good.
//
// Choose it when a net/http service accepts JWTs as bearer tokens or in a
// cookie and must honour logout before the tokens expire. A request costs
// one signature verification (cheapest for HS256, dearer for RSA and
// ECDSA) plus one IsRevoked on the Store: a map read through the cached
// package or memorystore, one round trip to Redis or memcached without a
// cache. Durability is the Store's.
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
//     year 1 to the end of the year 9999; it is read to the millisecond (iat rounded down),
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
// algorithms of golang-jwt admit one signature per message. A jti that
// starts with "sig:" or with a prefix of the session layout (below) makes
// the token invalid in every mode, with or without sessions, so that no
// Guard sharing a Store writes into another's ids; so does a jti longer
// than blocklist.MaxIDLen bytes, or one that is not a string (401, never a
// Store error).
//
// # Logout and revocation
//
// [Guard.Logout] and [Guard.LogoutHandler] revoke the token of the request
// until its exp plus [MaxLeeway], so a token that any Guard (whatever its
// leeway) would still accept is never un-revoked early, and clear the
// cookie.
// [Guard.RevocationHandler] is an RFC 7009 endpoint that revokes a token
// only for a caller entitled to it: by default ([SameSubject]) a caller
// whose own valid token has the same sub (and iss); [WithRevocationPolicy] sets
// another policy, such as an administrator role. Others get the RFC's error
// answer and nothing is stored. [Guard.Revoke] revokes any token string for
// custom flows. Only tokens that verify are revoked: a token with a bad
// signature cannot be presented anyway, and an expired one needs no
// revocation.
//
// # Sessions: refresh tokens, reuse detection, log out everywhere
//
// [WithSessions] turns on sessions. [Guard.NewSession] mints, at login, an
// access token and a refresh token sharing a session id (claim "sid") and
// told apart by the claim "token_use" ("access" or "refresh"): the
// middleware refuses refresh tokens (even on a Guard without sessions, so a
// service that only verifies cannot be handed one) and [Guard.Refresh]
// refuses access tokens. Refresh exchanges a refresh token for a new pair
// of the same session and records the exchange with blocklist.OnceStore's
// RevokeOnce, so a refresh token works once, even when presented twice at
// the same moment to different processes. A refresh token presented again
// (stolen, or replayed) revokes its whole session and gets an error
// wrapping [ErrRefreshReused], unless [Sessions] GracePeriod lets it have
// its successor again (below). [Guard.RevokeSession] ends one session;
// [Guard.LogoutAll] ends every token of a subject issued before the call.
// Logout and the revocation handlers end the whole session of a token that
// has a sid.
//
// # Session layout in the Store
//
// Sessions use plain Store entries (Revoke with an id and an end), so any
// Store serves, and a program in another language can read them with
// RevokedUntil alone. What a reader concludes from an entry depends only on
// its id, its end, the token's claims and the constants [MaxLeeway] (5
// minutes) and [MaxRefreshTTL] (400 days), never on a Guard's RefreshTTL,
// AccessTTL or leeway: Guards with different settings share a Store, and a
// setting may be raised or lowered at any time, without moving a recorded
// revocation. P below is 2 × MaxLeeway: one MaxLeeway for the Guard that
// checks, one for an issuer whose clock is ahead.
//
//	id                   written by             ends at
//	jti                  Revoke, Logout         exp + MaxLeeway (a token without sid)
//	"sid:" + sid         RevokeSession, Logout  r + B + P; r = the call, B = the session's bound
//	"sub:" + sub         LogoutAll              c + MaxRefreshTTL + P; c = the cutoff
//	"ref:" + jti         Refresh                x + B + P; x = the first exchange
//
// An id that would be longer than blocklist.MaxIDLen uses "sid#", "sub#"
// or "ref#" and the unpadded base64url SHA-256 of the value instead. A
// token whose jti starts with "sig:", "sid:", "sid#", "sub:", "sub#",
// "ref:" or "ref#" is invalid, with or without sessions, so no jti ever
// meets these ids. Every request checks the jti, "sid:" and "sub:" ids of its token in one call
// to the Store (blocklist.BatchStore: one round trip to Redis or
// memcached, one local read through the cached package); Refresh adds the
// two "ref:" ids of the token and its successor to that call.
//
// The session bound. A session id minted by NewSession ends in ".<n>s",
// n being RefreshTTL in whole seconds (rounded up), as in
// "GEZDGNBVGY3TQOJQGEZDGNBVGY.2592000s". Every token with such a sid must
// have exp − iat ≤ n seconds, or it is invalid; Refresh, on any Guard,
// mints tokens no longer-lived than that, so the bound a session starts
// with holds for its whole life. A sid without the suffix (another
// issuer's) has the bound MaxRefreshTTL, and its tokens may live at most
// the checking Guard's RefreshTTL. Tokens without a sid may live at most
// RefreshTTL too. So every token checked under sessions has exp − iat ≤ B
// ≤ MaxRefreshTTL, and its session entry (r + B + P) outlives every token
// of the session issued before r + MaxLeeway. Storage: one entry per ended
// session, and one per exchanged refresh token, each for B plus 10 minutes
// (for sessions of another issuer's sids, which declare no bound,
// MaxRefreshTTL plus 10 minutes).
//
// LogoutAll. The cutoff c is the call's time in milliseconds, rounded up;
// a reader gets it back as the entry's end minus MaxRefreshTTL + P, and
// refuses a token of that subject whose iat is before c plus its own
// leeway: an issuer whose clock is ahead by up to the leeway stamps a token
// minted before the call with an iat up to the leeway after c. The cost is
// that, with a leeway L, tokens minted in the L after LogoutAll are
// refused too (none with the default leeway of zero); LogoutAll does not
// wait that long. The entry lives MaxRefreshTTL + P, longer than any token
// it refuses, whatever the settings of the Guard that wrote it: one entry
// per subject, for about 400 days, which suits a rare operation. Tokens
// must carry iat; the Guard writes it to the millisecond (a fractional
// NumericDate, which RFC 7519 allows), so a login right after LogoutAll
// works when the leeway is zero. A token minted elsewhere with a
// whole-second iat is refused if minted in the same second as, but after,
// the cutoff.
//
// Refresh overlapping a revocation. The tokens Refresh mints carry as iat
// the time taken before the lookup that found the session alive, and live
// at most B from then. A RevokeSession or LogoutAll that the lookup did
// not see came after that time, so it covers them: the new tokens are
// refused, and the entries outlive them.
//
// The grace period and the exchange record. The first exchange of a
// refresh token at time x (in milliseconds) writes "ref:"+jti with
// RevokeOnce, ending at x + B + P, so every reader finds x again from the
// token's sid alone (B being the session's bound, above): two copies of one
// refresh token with different lives, which a grace replay on a Guard with
// another RefreshTTL mints, read one record alike, and the record outlives
// both. The successors' jtis are derived from the
// parent's: base64url(SHA-256("jwtguard refresh" + "\x00" + jti)) for the
// refresh token and the same with "access" for the access token, and both
// carry iat x. A replay within GracePeriod of x, while "ref:" + the
// successor's jti is absent, mints the same tokens again (the same strings
// for deterministic signing methods and Guards with the same settings) on
// any Guard: the chain never forks, the successor's expiry never moves, and
// a LogoutAll after x covers it. The window is that of the Guard that
// answers the replay. A replay after the window, or of a token
// whose successor was exchanged (a grandparent), is reuse. Whoever holds a
// refresh token within the window gets its successor, a thief too; after
// it the holder of either copy is one exchange away from being detected.
//
// Clocks. These guarantees assume the clocks of the Guards, of the issuers
// and of the Store agree within the checking Guard's leeway.
//
// # Metrics and logs
//
// A Guard reports OpenTelemetry metrics through the meter provider of
// WithMeterProvider (default the global one, otel.GetMeterProvider()),
// under the instrumentation scope ScopeName; the application picks the SDK
// and the exporter, this package uses the metric API only. Attribute sets
// are built once by New, so recording allocates nothing; no attribute ever
// holds a token, a token id or a subject.
//
//	jwtguard.requests       counter {request}      middleware requests and Verify calls, by jwtguard.outcome:
//	                                               accepted, no_token, invalid, revoked, cross_origin,
//	                                               store_error, failed_open
//	jwtguard.check.duration histogram s            time to check a token (parse, verify, ask the Store), by
//	                                               jwtguard.outcome
//	jwtguard.revocations    counter {revocation}   entries written to revoke, by jwtguard.revocation.kind
//	                                               (token, session, subject) and jwtguard.outcome (ok,
//	                                               store_error)
//	jwtguard.refreshes      counter {refresh}      refresh tokens exchanged for the first time (sessions)
//	jwtguard.refresh.grace_replays    counter {replay}    replays answered within the grace period
//	jwtguard.refresh.reuse_detections counter {detection} spent refresh tokens presented again, each
//	                                               revoking its session
//
// The session counters are SessionStats, read at each collection; the
// provider keeps a Guard with sessions reachable.
//
// Through WithLogger's logger (default slog.Default()) a Guard logs every
// Store failure at Error with the error, whatever the ErrorHandler, and
// each refusal at Debug with its reason, never the token, and a detected
// reuse of a refresh token at Warn with the sid and sub of the session it
// revoked.
//
// # Administration
//
// AdminHandler serves JSON endpoints to revoke ids and raw tokens, list
// and count revocations, end sessions and log subjects out, for operators
// (cmd/blocklist -admin talks to it). It authenticates nobody: mount it
// behind an admin credential.
package jwtguard
