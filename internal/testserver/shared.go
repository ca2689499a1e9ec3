package testserver

import (
	"context"
	"sync"
	"testing"
)

// Shared is one server started on first use and handed to every test and
// benchmark of a package that asks for it; each keeps to its own key
// prefix. Declare it as a package variable of the test files and Close it
// from TestMain, after m.Run: that stops the process it started, by PID.
type Shared struct {
	start func(ctx context.Context) (*Server, error)

	once sync.Once
	srv  *Server
	err  error
}

// SharedRedis returns a Shared redis-server started as StartRedis(ctx,
// args...) would start it.
func SharedRedis(args ...string) *Shared {
	return &Shared{start: func(ctx context.Context) (*Server, error) { return StartRedis(ctx, args...) }}
}

// SharedMemcached returns a Shared memcached started as
// StartMemcached(ctx, args...) would start it.
func SharedMemcached(args ...string) *Shared {
	return &Shared{start: func(ctx context.Context) (*Server, error) { return StartMemcached(ctx, args...) }}
}

// Get starts the server on the first call and returns it. When the binary
// is missing the test is skipped, or fails if the environment has CI=true;
// a server that would not start fails every test that asks for it.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		s.srv, s.err = s.start(ctx)
	})
	if s.err != nil {
		skipOrFatal(t, s.err)
	}
	return s.srv
}

// Close stops the server if Get started it. It is safe to call when Get
// never was.
func (s *Shared) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
