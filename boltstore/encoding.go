package boltstore

// encodeMillis maps int64 to uint64 preserving order, so that big-endian
// bytes sort like the times they encode, negative ones included.
func encodeMillis(ms int64) uint64 { return uint64(ms) ^ (1 << 63) }

func decodeMillis(u uint64) int64 { return int64(u ^ (1 << 63)) }
