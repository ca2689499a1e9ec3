// Package measure is the one timing implementation of this module: the
// workload every Store is measured with, the turns a Store and its raw
// baseline take so that their ratio is honest, and the percentiles. The
// comparison command (go run ./bench), conformance.RunBenchmarks and the
// benchmarks of every backend use it, so every row is measured the same way.
//
// [Measure] runs a Store through the workload and returns latency
// percentiles (p50, p99), parallel throughput, allocations per operation and
// how many operations each figure comes from. [Run] runs the same workload
// as Go benchmarks (conformance.RunBenchmarks exposes it), and [Versus] times
// a Store and its raw baseline in turns inside a Go benchmark and reports
// their ratio.
//
// A raw client (a map read, a bbolt View+Get, a Redis EXISTS, a memcached
// get) is measured by the same code when wrapped as a [Baseline]: the ratio
// between a Store and its Baseline, measured in the same run against the
// same server, is the cost of the Store itself. [Time] and [Parallel] time any
// other operation, such as a lookup in a blocklist of a million entries.
//
// # Workload
//
// Token ids look like the UUIDs most issuers put in jti (36 bytes) and carry a
// random per-call prefix, so calls never see each other's entries. Before
// timing, [Measure] revokes a set of ids (WithKeys, 1,000 by default) for
// an hour (WithLifetime). It then times, in this order:
//
//   - IsRevoked on the revoked ids, cycling through them; each answer must
//     be true,
//   - IsRevoked on as many ids never revoked; each answer must be false,
//   - Revoke of a fresh id per call (a logout),
//   - IsRevoked from GOMAXPROCS goroutines at once (WithParallelism),
//     alternating revoked and unrevoked ids, as operations per second.
//
// A wrong answer is an error, not a number. Each phase starts with an untimed
// warm-up (WithWarmup operations, at most a quarter of WithMaxDuration) that
// asks for every id at least once, so that a cache in the Store starts warm.
// Then at least WithOps operations are timed, and lookups go on until
// WithMinDuration has passed, so that a store answering in nanoseconds gives
// many samples; every phase stops at WithMaxDuration. The result says how
// many operations ran. Allocations are counted with runtime.MemStats over the
// timed operations.
//
// With WithBaseline, the baseline takes turns with the Store in every phase,
// eight turns each in the order A B B A A B B A ..., so that a drift of the
// machine (a noisy neighbour, a server compacting) falls on both alike and
// their ratio stays honest.
//
// # Percentiles of fast operations
//
// Reading the clock costs tens of nanoseconds, as much as a lookup in a map.
// So operations that the end of the warm-up found faster than about 2 µs
// (timing at least 16 of them, and at least 50 µs of them) are timed in
// groups (Latency.Group operations per clock reading, at most 1,000) and each
// group counts as that many operations of its mean duration. Their p99 is
// thus a p99 of group means, which smooths a rare slow operation into its
// group. Operations slower than that are timed one by one, and their p99 is
// that of single operations.
//
// # Why internal
//
// Third parties measure their Store with conformance.RunBenchmarks; the
// options, result types and baselines here serve this module's own tools and
// may change with them.
//
// Measurements take what they measure: seconds per Store, more against a
// slow one. They are for benchmarks and tools, not for tests that must be
// fast (use small WithOps and WithMaxDuration there).
package measure
