// Package blocklist makes JWT logout real: it defines the Store that keeps
// the ids of revoked tokens until the tokens themselves expire.
//
// A JWT is valid until its exp claim, wherever it was copied to. On logout a
// server calls [Store.Revoke] with the token's id (its jti claim, or a digest
// of its signature when it has none) and its exp; on every request, after
// verifying the signature, it calls [Store.IsRevoked] and refuses the token
// when the answer is true. An entry lives exactly as long as its token would
// have, so the list holds only live revocations and never grows without
// bound.
//
// This package holds only the contract and imports only the standard
// library. Backends live in their own packages (memorystore, boltstore,
// redisstore, memcachestore), the cached package puts a local LRU in front of
// any of them, and the conformance package is the test suite every backend
// passes to prove it keeps the contract written here.
package blocklist

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxIDLen is the longest token id, in bytes, that a Store accepts.
const MaxIDLen = 1024

// Errors shared by every Store. Backends wrap them once with their package
// name, so test for them with errors.Is.
var (
	// ErrInvalidID is returned by both methods of a Store for a token id that
	// is empty or longer than MaxIDLen bytes.
	ErrInvalidID = errors.New("blocklist: invalid token id")

	// ErrClosed is returned by a Store that has been closed.
	ErrClosed = errors.New("blocklist: store is closed")
)

// Store keeps revoked token ids until their tokens expire.
//
// The contract below is kept by every backend of this module and checked by
// the conformance package:
//
//   - A token id (jti) is 1 to MaxIDLen bytes of anything: spaces, newlines,
//     NUL, invalid UTF-8, punctuation. Ids are compared exactly, byte for
//     byte; no two distinct ids are ever confused, whatever the key rules of
//     the server behind the Store. An empty or longer id gets an error
//     wrapping ErrInvalidID from both methods.
//   - A context that is already done gets an error wrapping ctx.Err(), before
//     any work. Calls that block honour the context's cancellation and
//     deadline.
//   - When the backend cannot answer (server down, timeout, corrupt reply),
//     the call returns an error wrapped with the backend's package name.
//     IsRevoked never answers (false, nil) for a lookup it could not make: a
//     silent "not revoked" would let a logged-out token back in.
//   - A Store is safe for concurrent use by multiple goroutines. Expired
//     entries are removed without the caller's help, so storage stays bounded
//     by the live revocations.
type Store interface {
	// Revoke records that the token with id jti is revoked until exp, the
	// token's own expiry.
	//
	// If exp is not in the future, Revoke stores nothing and returns nil: the
	// token is dead anyway. Revocation is monotonic: revoking an id that is
	// already revoked never shortens its revocation, which lasts until the
	// later of the two exps; revoking twice is not an error. When Revoke
	// returns nil, IsRevoked answers true for jti until exp, in this process
	// and in any other process sharing the backend.
	Revoke(ctx context.Context, jti string, exp time.Time) error

	// IsRevoked reports whether the token with id jti is revoked now: true
	// while the exp of its revocation is in the future, false once it has
	// passed (a backend may be late by at most one second) or when jti was
	// never revoked. Tokens that live for 90 days, or until the year 2100,
	// work on every backend.
	//
	// An exp later than a backend's clock can hold is saturated, never
	// wrapped around: the revocation then lasts until the latest time that
	// clock holds, which is never before 2262-04-11T23:47:16Z (the end of
	// int64 Unix nanoseconds). Revoke never refuses an exp for being too
	// late, never returns nil having stored an already expired entry, and
	// RevokedUntil reports the saturated end.
	//
	// When err is not nil the bool is meaningless and the caller must treat
	// the token as not verified.
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// ExpiryStore is a Store that can also tell when a revocation ends. The
// cached package finds it with a type check, so it can keep a revoked answer
// exactly as long as it stays true. Every backend of this module implements
// it in one round trip.
type ExpiryStore interface {
	Store

	// RevokedUntil reports when the revocation of jti ends: the latest exp
	// it was revoked with, never earlier than that exp truncated to the
	// millisecond (or than the saturated end, for an exp past what the
	// backend holds: see IsRevoked) and at most one second later. It returns the zero Time
	// when jti is not revoked now. Ids, contexts and errors follow the rules
	// of IsRevoked.
	RevokedUntil(ctx context.Context, jti string) (time.Time, error)
}

// ValidateID returns nil for a token id a Store accepts, and an error
// wrapping ErrInvalidID otherwise. Backends call it first in every method.
func ValidateID(jti string) error {
	if len(jti) == 0 || len(jti) > MaxIDLen {
		return fmt.Errorf("%w: length %d, want 1 to %d bytes", ErrInvalidID, len(jti), MaxIDLen)
	}
	return nil
}
