package jwtguard

import (
	"context"
	"time"
)

// observer holds what a Guard reports through: its logger and its
// metrics (see WithLogger, WithMeterProvider).
type observer struct {
	clock func() time.Time
}

// observeConfig is what the options of observe.go set.
type observeConfig struct{}

func newObserver(c *config) *observer {
	o := &observer{clock: c.now}
	if o.clock == nil {
		o.clock = time.Now
	}
	return o
}

func (o *observer) now() time.Time { return o.clock() }

// revoked reports n revocations written (err nil) or failed.
func (o *observer) revoked(ctx context.Context, n int, err error) {}

// storeFailure reports a Store failure in op.
func (o *observer) storeFailure(ctx context.Context, op string, err error) {}
