package jwtguard

import "strings"

// The kinds of Store entry a Guard writes, as IDKind names them.
const (
	// KindToken is the revocation of one token by its jti.
	KindToken = "token"
	// KindSignature is the revocation of one token without jti, by the
	// digest of its signature (an id starting "sig:").
	KindSignature = "signature"
	// KindSession is a revoked session (RevokeSession).
	KindSession = "session"
	// KindSubject is a subject's logout cutoff (LogoutAll).
	KindSubject = "subject"
	// KindExchange records the first exchange of a refresh token (Refresh;
	// see the session layout in the package doc).
	KindExchange = "exchange"
)

// IDKind names the kind of a Store entry written by a Guard, from its id
// alone: KindSignature, KindSession, KindSubject, KindExchange, or KindToken for any
// other id. It lets tools that list a Store (cmd/blocklist, AdminHandler)
// tell sessions and subjects from tokens; it costs a few prefix
// comparisons.
func IDKind(id string) string {
	switch {
	case strings.HasPrefix(id, idPrefix):
		return KindSignature
	case strings.HasPrefix(id, sessionPrefix), strings.HasPrefix(id, sessionDigestPrefix):
		return KindSession
	case strings.HasPrefix(id, subjectPrefix), strings.HasPrefix(id, subjectDigestPrefix):
		return KindSubject
	case strings.HasPrefix(id, exchangedPrefix), strings.HasPrefix(id, exchangedDigestPrefix):
		return KindExchange
	}
	return KindToken
}
