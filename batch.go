package blocklist

import (
	"context"
	"fmt"
	"time"
)

// BatchStore is an ExpiryStore that can tell when the revocations of several
// ids end in one round trip. A request that must check a token's own id,
// its session and its subject (see package jwtguard) then pays one round
// trip instead of three. Every backend of this module implements it; callers
// find it with a type check, or call the function RevokedUntilEach, which
// does.
type BatchStore interface {
	ExpiryStore

	// RevokedUntilEach sets until[i] to what RevokedUntil(ctx, jtis[i])
	// would answer, for every i, in one round trip to the backend (a
	// backend spread over several servers may send one request to each, at
	// once). It is not a snapshot: each answer holds at some moment during
	// the call.
	//
	// len(until) must equal len(jtis), or it returns an error and changes
	// nothing. No ids is not an error. Ids may repeat. Every id follows the
	// rules of Store: if any is invalid, the error wraps ErrInvalidID and
	// nothing is looked up. A done context gets an error wrapping ctx.Err()
	// before any work. When the backend cannot answer, the error names the
	// backend's package and the contents of until are meaningless: never
	// read them as "not revoked".
	RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error
}

// OnceStore is a Store that can revoke an id only if it is not revoked
// already, as one atomic step: of any number of concurrent callers, in any
// number of processes sharing the backend, exactly one learns that it made
// the revocation. Refresh-token rotation uses it so that a refresh token is
// exchanged at most once (see package jwtguard). Every backend of this
// module implements it.
type OnceStore interface {
	Store

	// RevokeOnce revokes jti until exp, as Revoke does, if jti is not
	// revoked now, and then reports first == true. If jti is revoked now it
	// changes nothing (not even a later exp) and reports false. If exp is
	// not in the future it stores nothing and reports false.
	//
	// Ids, contexts and errors follow the rules of Store. When err is not
	// nil, first is false and the revocation may or may not have been
	// stored: the caller must not act as the winner. A Store that has the
	// method but cannot keep its promise over the Store it wraps returns an
	// error wrapping errors.ErrUnsupported.
	RevokeOnce(ctx context.Context, jti string, exp time.Time) (first bool, err error)
}

// RevokedUntilEach sets until[i] to when the revocation of jtis[i] ends, or
// the zero Time when it is not revoked, as BatchStore.RevokedUntilEach
// does. It uses s's RevokedUntilEach when s is a BatchStore (one round
// trip), and otherwise calls RevokedUntil once per id, in order, stopping
// at the first error.
func RevokedUntilEach(ctx context.Context, s ExpiryStore, jtis []string, until []time.Time) error {
	if b, ok := s.(BatchStore); ok {
		return b.RevokedUntilEach(ctx, jtis, until)
	}
	if err := ValidateBatch(ctx, jtis, until); err != nil {
		return err
	}
	for i, jti := range jtis {
		t, err := s.RevokedUntil(ctx, jti)
		if err != nil {
			return err
		}
		until[i] = t
	}
	return nil
}

// ValidateBatch validates the arguments of RevokedUntilEach, as ValidateID
// validates an id: it returns the error RevokedUntilEach must return before
// any work, or nil. That is an error wrapping ctx.Err() for a done context,
// one for until and jtis of different lengths, or one wrapping ErrInvalidID
// that names the first invalid id's index. Backends call it first and wrap
// its error with their package name.
func ValidateBatch(ctx context.Context, jtis []string, until []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(until) != len(jtis) {
		return fmt.Errorf("blocklist: %d ids but %d answers to fill", len(jtis), len(until))
	}
	for i, jti := range jtis {
		if err := ValidateID(jti); err != nil {
			return fmt.Errorf("id %d: %w", i, err)
		}
	}
	return nil
}
