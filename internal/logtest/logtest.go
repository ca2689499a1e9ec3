// Package logtest holds log sinks for tests.
package logtest

import (
	"bytes"
	"io"
	"sync"
)

// SyncBuffer is a bytes.Buffer guarded by a mutex: a log destination that
// goroutines other than the test's may write to while the test reads it.
// The zero value is an empty buffer ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*SyncBuffer)(nil)
