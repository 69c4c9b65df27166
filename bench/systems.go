package main

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// A system is one of the event systems compared: ours on a store, or a peer.
type system struct {
	name string
	// ours marks Monster's own rows (the numerators of the ratios).
	ours bool
	// durability says whether an acknowledged write is synced, and how.
	durability string
	// notes says how the system is set up, for the report.
	notes string
	// competing says whether several workers of one consumer share its
	// events (false: the workers setting does not apply).
	competing bool
	// replay says whether a consumer added later can read history.
	replay bool
	// smaller divides the size of the named workloads for a system that
	// would take minutes on them at full size (the report says so).
	smaller map[string]int
	open    func(ctx context.Context) (backend, error)
}

// A backend is a running system, opened once per system and run.
type backend interface {
	// fresh returns a new, empty log (a schema, a stream, a file...).
	fresh(ctx context.Context, o freshOpts) (eventLog, error)
	close() error
}

type freshOpts struct {
	// consumers names the consumers that will read the log. Only River
	// needs them in advance: it stores one job per consumer per event.
	consumers []string
	// maxAttempts is the retry limit the failure workload needs (River
	// records it on the job at insert time); 0 for the default.
	maxAttempts int
}

// An eventLog is one fresh log on a backend.
type eventLog interface {
	// publish stores one event and returns once it is acknowledged.
	publish(ctx context.Context, payload []byte) error
	// publishBatch stores many events in one go (one transaction, one
	// Publish call or a window of asynchronous publishes).
	publishBatch(ctx context.Context, payloads [][]byte) error
	// consume starts consumers, each reading the whole log from its
	// beginning independently of the others; stop stops them all.
	consume(ctx context.Context, specs []consumerSpec) (stop func(context.Context) error, err error)
	// close removes the log's tables or stream.
	close(ctx context.Context) error
}

// consumerSpec describes one independent consumer.
type consumerSpec struct {
	name    string
	workers int
	// handle is called for each delivery with the attempt number (1 for
	// the first); an error asks for a retry.
	handle func(ctx context.Context, payload []byte, attempt int) error
	// maxAttempts > 0 asks for retries with a short backoff (10 ms
	// doubling to 100 ms), giving up after maxAttempts runs.
	maxAttempts int
}

// Retry timing used by every system in the failure workload.
const (
	retryInitial = 10 * time.Millisecond
	retryMax     = 100 * time.Millisecond
)

func retryDelay(attempt int) time.Duration {
	d := retryInitial
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// diagnoser is implemented by logs that collect their system's own warnings
// and errors during a workload; the report shows them.
type diagnoser interface {
	diagnostics() string
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, keeping the
// first 4 KiB.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 4096 {
		s.b.Write(p[:min(len(p), 4096-s.b.Len())])
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
