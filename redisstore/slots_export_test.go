package redisstore

// StreamMapStaleAge is streamMapStaleAge: past it a write reads the map of
// streams again before announcing.
const StreamMapStaleAge = streamMapStaleAge
