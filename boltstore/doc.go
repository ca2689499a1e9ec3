// Package boltstore is a durable blocklist.Store in a single bbolt file: the
// embedded backend for an application that runs on one machine and has no
// Redis.
//
// Choose it when logouts must survive a restart or a crash and one process
// owns the data; for a fleet of servers use redisstore, and for tests or a
// blocklist that may be forgotten on restart use memorystore.
//
// # Cost
//
// A lookup (IsRevoked, RevokedUntil) is one read-only bbolt transaction and
// one B+tree descent on a memory-mapped file: no disk access once the pages
// are cached, no allocation beyond bbolt's own.
//
// A revocation is written with bbolt's DB.Batch and returns only after its
// transaction is committed and fsynced. Concurrent Revoke calls share one
// transaction and one fsync, so a single caller waits about one fsync plus
// the batch delay (DB.MaxBatchDelay, 10ms by default), and a thousand
// concurrent logouts cost about as much as a few.
//
// # Durability
//
// When Revoke returns nil the revocation is on disk: a process killed at any
// moment, even with SIGKILL, loses no acknowledged revocation, and the file
// reopens cleanly. A revocation whose Revoke returned an error may or may not
// have been written.
//
// # Layout
//
// The store keeps two buckets: one (DefaultBucket, or WithBucket's name)
// maps each token id to its exp (8 bytes: Unix milliseconds, big-endian,
// sign bit flipped so that bytes sort like times), the other (the same name
// followed by ".expiry") is an index keyed by exp||id, ordered by expiry. A
// background sweeper walks the index from its start and deletes expired
// entries, so a sweep costs O(expired) whatever the size of the file, and bbolt reuses the freed pages: a steady stream of
// short-lived revocations does not grow the file without bound. Lookups never
// depend on the sweeper: an entry whose exp has passed answers "not revoked"
// whether or not it is still on disk.
//
// bbolt lets one process at a time open a file for writing. Open waits for
// the file lock for a short, configurable time (WithTimeout) and then returns
// an error, instead of hanging behind another process.
package boltstore
