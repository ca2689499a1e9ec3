package blocklist

import (
	"context"
	"strconv"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event. A watch reports the state of its connection as well
// as revocations, so that a subscriber knows when it may have missed some.
const (
	// Revoked reports a revocation: Event.JTI is revoked until Event.Exp.
	// The same revocation may be reported more than once (after a
	// reconnection, or when it was made twice); applying it again is
	// harmless, since revocation is monotonic.
	Revoked EventKind = iota + 1

	// Synced reports that the watch is live: every revocation made from
	// now on will be reported. Revocations made before it may not have
	// been (the first Synced of a watch, or a gap the backend could not
	// replay after a Lost): a subscriber that keeps state built from
	// earlier answers must rebuild or distrust it.
	Synced

	// Lost reports that the watch cannot reach its backend: revocations
	// made from now on are not reported until Resumed or Synced. It is
	// reported once per outage, and before the first Synced when the
	// backend cannot be reached at all.
	Lost

	// Resumed reports that the watch is live again after a Lost, with
	// nothing missed: every revocation made during the outage has been
	// reported before this event.
	Resumed
)

// String returns the name of the kind: "Revoked", "Synced", "Lost" or
// "Resumed".
func (k EventKind) String() string {
	switch k {
	case Revoked:
		return "Revoked"
	case Synced:
		return "Synced"
	case Lost:
		return "Lost"
	case Resumed:
		return "Resumed"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one report of a watch. JTI and Exp are set for Revoked only.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// JTI is the revoked token id.
	JTI string
	// Exp is when the revocation ends: at least the exp given to Revoke
	// truncated to the millisecond, at most one second later.
	Exp time.Time
	// Announced is when the backend recorded the announcement, by its own
	// clock (for redisstore, the time in the stream entry's id), to the
	// millisecond; the zero Time when the backend does not say. The time
	// from Announced to the event's arrival is the watch's lag.
	Announced time.Time
}

// WatchStore is a Store that reports revocations as they are made, by any
// process sharing its backend, so a subscriber can keep a local copy
// current instead of asking on every check. The cached package finds it
// with a type check; redisstore implements it with a Redis stream.
type WatchStore interface {
	Store

	// Watch calls fn for each event, in order, from one goroutine, until
	// ctx is done; it then returns an error wrapping ctx.Err(). A done
	// context fails at once. fn must return quickly: the watch waits for
	// it, and a slow fn delays the events after it (a backend that keeps a
	// bounded history may then report Lost and Synced, see Synced).
	//
	// The first event is Synced once the watch is live, or Lost when the
	// backend cannot be reached (followed by Synced once it can). While
	// the backend is unreachable Watch keeps trying by itself; it returns
	// early only for an error that retrying cannot fix, wrapped with the
	// backend's package name. Revocations with an exp not in the future
	// are not reported. Revocations of one id are reported in the order
	// they were made: one whose Revoke returned before another of the same
	// id began is reported before it. A backend may report revocations of
	// different ids in another order than they were made (redisstore on
	// Redis Cluster reads one stream per master), and of one id too when
	// the backend moved it meanwhile (a Cluster resharding that gives its
	// slot to another master): a subscriber keeps, for each id, the latest
	// end it was told of, as revocation is monotonic.
	Watch(ctx context.Context, fn func(Event)) error
}

// ScanStore is a Store that can list every live revocation, so a
// subscriber can load the whole blocklist (see the replica mode of package
// cached).
type ScanStore interface {
	Store

	// ScanRevoked calls fn for every revocation live during the whole
	// call, at least once each, with its id and end (as RevokedUntil
	// reports it); revocations made or ended during the call may or may
	// not be reported. It is not a snapshot: pair it with Watch, started
	// first, to miss nothing. fn is never called concurrently; an error
	// from fn stops the scan and is returned as is. Contexts and backend
	// errors follow the rules of Store.
	ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error
}
