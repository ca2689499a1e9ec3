package boltstore

import (
	"math"
	"time"
)

// ceilMillis returns t in Unix milliseconds, rounded up so that a stored
// revocation never ends before its exp. Times beyond what int64 milliseconds
// hold (292 million years) are clamped.
func ceilMillis(t time.Time) int64 {
	const maxSec = math.MaxInt64/1000 - 1
	if sec := t.Unix(); sec > maxSec {
		return math.MaxInt64
	} else if sec < -maxSec {
		return math.MinInt64 + 1
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// encodeMillis maps int64 to uint64 preserving order, so that big-endian
// bytes sort like the times they encode, negative ones included.
func encodeMillis(ms int64) uint64 { return uint64(ms) ^ (1 << 63) }

func decodeMillis(u uint64) int64 { return int64(u ^ (1 << 63)) }
