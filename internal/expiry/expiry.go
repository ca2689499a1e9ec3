// Package expiry converts a token's exp to the integer clocks the backends
// store, saturating where a plain conversion would overflow.
//
// time.Time spans about ±292 billion years, int64 milliseconds ±292 million
// and int64 nanoseconds only the years 1678 to 2262. An exp claim is any
// JSON number, so an attacker (or a careless issuer) can send one beyond
// either range: t.UnixMilli() and t.UnixNano() then wrap around silently,
// often to a time in the past, and a revocation stored with it is already
// expired. Every backend converts through this package instead, so that an
// exp too large for its clock is stored as the latest time that clock holds.
package expiry

import (
	"math"
	"time"
)

// Bounds of the clocks, as times.
var (
	// MaxMilli is the latest time int64 Unix milliseconds hold:
	// 292278994-08-17T07:12:55.807Z.
	MaxMilli = time.UnixMilli(math.MaxInt64)
	minMilli = time.UnixMilli(math.MinInt64)

	// MaxNano is the latest time int64 Unix nanoseconds hold:
	// 2262-04-11T23:47:16.854775807Z.
	MaxNano = time.Unix(0, math.MaxInt64)
	minNano = time.Unix(0, math.MinInt64)
)

// CeilMillis returns t in Unix milliseconds, rounded up to the next whole
// millisecond so that an entry stored with it never ends before t. Times at
// or after MaxMilli give math.MaxInt64, times at or before the earliest
// int64 millisecond give math.MinInt64: never a wrapped value.
func CeilMillis(t time.Time) int64 {
	if !t.Before(MaxMilli) {
		return math.MaxInt64
	}
	if !t.After(minMilli) {
		return math.MinInt64
	}
	// In range, t.UnixMilli is exact (its intermediate product may wrap,
	// but the sum lands back on the true value), and so is the +1: t is
	// before MaxMilli.
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// UnixNano returns t.UnixNano, saturated: math.MaxInt64 for t at or after
// MaxNano, math.MinInt64 for t at or before the earliest int64 nanosecond
// (1677-09-21).
func UnixNano(t time.Time) int64 {
	if !t.Before(MaxNano) {
		return math.MaxInt64
	}
	if !t.After(minNano) {
		return math.MinInt64
	}
	return t.UnixNano()
}
