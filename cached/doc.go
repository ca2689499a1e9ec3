// Package cached puts a local LRU cache in front of any blocklist.Store, so
// the check every request makes is a memory read instead of a round trip.
//
// A revocation written by another process, or straight into the next Store,
// is seen here at most NegativeTTL (one second by default) after it was
// made; one made through this Store is seen here at once.
//
// # When to choose it
//
// Choose it in front of a networked backend (redisstore, memcachestore)
// when checks outnumber revocations, which is nearly always: almost every
// token checked is not revoked, and each "not revoked" answer is then
// reused for NegativeTTL instead of being asked again. A hit costs about
// 100 ns and allocates nothing; a miss costs one round trip to the next
// Store, shared by every concurrent miss on the same id. There is no point
// in front of memorystore, which is already a memory read. The cache adds
// no durability of its own: every revocation is written through to the
// next Store before this one records it.
//
// # How answers are kept
//
//   - "Not revoked" is kept for NegativeTTL (WithNegativeTTL), counted from
//     before the lookup that produced it. Zero turns this off.
//   - "Revoked" is kept until the revocation ends, never longer, so
//     IsRevoked turns false on time. The end comes from the next Store's
//     RevokedUntil when it is a blocklist.ExpiryStore (every backend of this
//     module is); otherwise a revoked answer is kept for PositiveTTL
//     (WithPositiveTTL).
//   - Revoke writes through first; only when the next Store accepted it is
//     the local entry updated, to the later of the old and new exp.
//   - Errors are never cached: a failed lookup leaves nothing behind and
//     the next check asks again, so an outage leaves no stale answer.
//   - Concurrent misses on one id make a single lookup (singleflight). It
//     runs detached from any one caller's cancellation, bounded by
//     WithLookupTimeout, so a caller that gives up does not fail the others.
//
// The cache holds at most WithSize entries (DefaultSize is 50,000, about
// 9 MB full); the least recently checked is dropped first. Stats reports
// hits, misses, lookups, errors and evictions.
package cached
