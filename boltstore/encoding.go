package boltstore

import (
	"time"

	"github.com/jwtblocklist/blocklist/internal/expiry"
)

// ceilMillis returns t in Unix milliseconds, rounded up so that a stored
// revocation never ends before its exp. Times beyond what int64 milliseconds
// hold (292 million years) are clamped.
func ceilMillis(t time.Time) int64 { return expiry.CeilMillis(t) }

// encodeMillis maps int64 to uint64 preserving order, so that big-endian
// bytes sort like the times they encode, negative ones included.
func encodeMillis(ms int64) uint64 { return uint64(ms) ^ (1 << 63) }

func decodeMillis(u uint64) int64 { return int64(u ^ (1 << 63)) }
