// Package memcachestore is a blocklist.Store kept in memcached, through the
// caller's github.com/bradfitz/gomemcache client.
//
// Choose it when your fleet already runs memcached and can live with what a
// cache is (below). A lookup is one memcached get, within a few percent of
// a raw gomemcache Get: a network round trip (tens of microseconds on
// loopback, a few hundred on a LAN) and one small allocation, the key,
// beyond the client's own. Several servers behind one client
// (memcache.New(a, b)) share the load, each id living on one of them.
//
// # Memcached is a cache: it forgets
//
// Memcached keeps nothing on disk and owes nothing to what it stores. A
// revocation is lost when:
//
//   - the server restarts, crashes or is replaced: every revocation it held
//     is gone;
//   - memcached runs out of memory (-m) and evicts the least recently used
//     entries to make room, revocations included;
//   - the client maps the id to another server because the server list
//     changed.
//
// A lost revocation is silent: IsRevoked answers false, and a token its user
// logged out of works again until its own exp. When that is not acceptable,
// use Redis with persistence (redisstore, appendonly yes) or a local
// database (boltstore).
//
// If you use memcached, size it so that it never evicts. An entry for a
// UUID-sized id takes one 120-byte chunk (about 130 bytes with memcached's
// hash table), a 1 KiB id about 1.2 KB: -m 256 holds a million live UUID
// revocations with room to spare. Count the revocations made within one
// token lifetime, since each lives until its token's exp. Give the
// blocklist its own memcached, or one whose other data cannot crowd it out,
// and watch the evictions counter of the "stats" command, which must stay 0
// (echo stats | nc HOST PORT). Better, start memcached with -M: a full
// server then refuses new entries instead of evicting old ones, so Revoke
// returns an error that the caller sees and can act on, and no acknowledged
// revocation vanishes for lack of memory.
//
// # Keys and values
//
// Memcached keys are at most 250 bytes with no space or control character,
// and ids are up to 1024 bytes of anything. An id whose escaped form fits is
// stored under prefix + "=" + the id with every byte outside '!'..'~', and
// '%', escaped as %XX; a longer id is stored under prefix + "#" + the
// base64url SHA-256 of the id, and its value holds the whole id, compared on
// every read. No two ids share an entry, and no two prefixes share a key (see
// WithPrefix).
//
// A value holds the revocation's exp in Unix milliseconds, rounded up (and,
// for a hashed key, the id), with the flags 0x626c0001. Reads compare that
// exp with the clock of the process: IsRevoked turns false at exp, to the
// millisecond, whatever memcached's one-second clock says. An entry under one
// of our keys that this package did not write makes the calls on that id
// return an error.
//
// # Expiry
//
// Memcached reads an expiration of up to 30 days as seconds from now, and a
// longer one as a Unix time, held in 32 bits. This package sends seconds from
// now for exps within 30 days, and a Unix time (with an hour of slack for
// the memcached host's clock) beyond, so a 90-day token stays revoked for 90
// days. Both are rounded up and have a second added for memcached's clock,
// which ticks once a second: an entry never expires before its exp.
// Memcached cannot express a time past 2038-01-19 03:14:07 UTC: a revocation
// that lasts beyond it is stored without expiry: it is read as revoked only
// until its exp, but memcached keeps it until it evicts it or restarts (with
// -M, only a restart removes it).
//
// # Contexts and timeouts
//
// gomemcache takes no context. Each method checks its context before it
// starts and between the rounds of a Revoke; a single round trip is bounded
// by the client's Timeout (500 ms unless set). When the context has a
// deadline sooner than that, the round trip runs in its own goroutine and the
// method returns the context's error at the deadline, leaving the round trip
// to end within Timeout. Cancelling a context without a deadline takes
// effect at the next round trip.
//
// # What it cannot do
//
// A Store of this package is not a blocklist.ScanStore and not a
// blocklist.WatchStore, so package cached cannot run a replica or a watch
// over it, and no tool can list its revocations. Memcached's protocol has
// no way to enumerate keys (its lru_crawler metadump is a debugging aid
// that walks the whole server, holds no prefix filter and may skip items),
// a long id's key is a digest that cannot be turned back into the id, and
// memcached has no stream or notification to announce revocations on. A
// cache in front of it keeps "not revoked" answers for its NegativeTTL.
package memcachestore
