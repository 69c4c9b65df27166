package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sizes are the workloads' sizes for one run.
type sizes struct {
	Publish1      int           `json:"publish_1_producer"`
	Publish64     int           `json:"publish_64_producers"`
	Producers     int           `json:"producers"`
	Batch         int           `json:"batch"`
	BurnDown      int           `json:"burn_down"`
	FanOut        int           `json:"fan_out_events"`
	FanOutWorkers int           `json:"fan_out_workers_per_consumer"`
	LatencyRates  []int         `json:"latency_rates"`
	LatencyFor    time.Duration `json:"latency_duration_ns"`
	LatencyWork   int           `json:"latency_workers"`
	Replay        int           `json:"replay"`
	Failure       int           `json:"failure_events"`
	FailWorkers   int           `json:"failure_workers"`
	Timeout       time.Duration `json:"timeout_ns"`
}

func defaultSizes(scale float64) sizes {
	n := func(v int) int { return max(int(float64(v)*scale), 10) }
	return sizes{
		Publish1: n(10_000), Publish64: n(100_000), Producers: 64, Batch: 1000,
		BurnDown: n(100_000), FanOut: n(10_000), FanOutWorkers: 4,
		LatencyRates: []int{100, 1000, 5000}, LatencyFor: time.Duration(float64(5*time.Second) * min(scale, 1)),
		LatencyWork: 4,
		Replay:      n(1_000_000), Failure: n(20_000), FailWorkers: 16,
		Timeout: 4 * time.Minute,
	}
}

// divided returns the sizes with every event count divided by d (latency
// runs for a d-th of the time).
func (s sizes) divided(d int) sizes {
	f := func(v int) int { return max(v/d, 10) }
	s.Publish1, s.Publish64, s.BurnDown, s.FanOut, s.Replay, s.Failure = f(s.Publish1), f(s.Publish64), f(s.BurnDown), f(s.FanOut), f(s.Replay), f(s.Failure)
	s.LatencyFor /= time.Duration(d)
	return s
}

// result is one figure: one workload on one system.
type result struct {
	Workload string         `json:"workload"`
	System   string         `json:"system"`
	Events   int            `json:"events"`
	Value    float64        `json:"value"`
	Unit     string         `json:"unit"`
	Seconds  float64        `json:"seconds"`
	P50ms    float64        `json:"p50_ms,omitempty"`
	P99ms    float64        `json:"p99_ms,omitempty"`
	P999ms   float64        `json:"p999_ms,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
	Note     string         `json:"note,omitempty"`
	Error    string         `json:"error,omitempty"`
	Skipped  bool           `json:"skipped,omitempty"`
}

func (r *result) addNote(s string) {
	if r.Note != "" {
		r.Note += "; "
	}
	r.Note += s
}

// A workload runs against one backend and fills in r.
type workload struct {
	name  string
	title string
	// higher says whether a higher Value is better (throughput) or lower
	// (latency, where Value is the p99).
	higher bool
	run    func(ctx context.Context, sys system, b backend, sz sizes, r *result) error
}

func workloads() []workload {
	ws := []workload{
		{"publish-1", "Publish, 1 producer, each event acknowledged (events/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runPublish(ctx, b, sz.Publish1, 1, sz, r)
		}},
		{"publish-64", "Publish, 64 concurrent producers, each event acknowledged (events/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runPublish(ctx, b, sz.Publish64, sz.Producers, sz, r)
		}},
		{"publish-batch", "Publish in batches of 1,000 from 1 producer (ours LogBatch, River InsertMany, Watermill Publish(msgs...), JetStream async publish window) (events/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runPublishBatch(ctx, b, sz.Publish64, sz, r)
		}},
		{"burn-down-1", "Burn-down: one consumer works through stored events, 1 worker (events/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runBurnDown(ctx, sys, b, sz.BurnDown, 1, sz, r)
		}},
		{"burn-down-16", "Burn-down: one consumer works through stored events, 16 workers (events/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runBurnDown(ctx, sys, b, sz.BurnDown, 16, sz, r)
		}},
		{"fan-out-4", "Fan-out: each event handled by 4 independent consumers, events published in batches of 1,000 while they run (handler calls/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runFanOut(ctx, b, 4, sz, r)
		}},
		{"fan-out-16", "Fan-out: each event handled by 16 independent consumers, events published in batches of 1,000 while they run (handler calls/s)", true, func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
			return runFanOut(ctx, b, 16, sz, r)
		}},
	}
	for _, rate := range defaultSizes(1).LatencyRates {
		ws = append(ws, workload{fmt.Sprintf("latency-%d", rate), fmt.Sprintf("Latency, open loop at %d events/s: publish call to handler start (ms)", rate), false,
			func(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
				return runLatency(ctx, b, rate, sz, r)
			}})
	}
	ws = append(ws,
		workload{"replay", "Replay: a new consumer added after the log holds N events, time to catch up (events/s)", true, runReplay},
		workload{"failure", "Failure path: 1% of handler calls fail once, one poison event always fails; 16 workers (good events/s)", true, runFailure},
	)
	return ws
}

// handler returns a consumer handler that checks and counts payloads.
func handler(t *tracker, lat *latencies) func(ctx context.Context, p []byte, attempt int) error {
	return func(ctx context.Context, p []byte, attempt int) error {
		seq, sent, err := parsePayload(p)
		if err != nil {
			return err
		}
		if lat != nil {
			lat.record(time.Since(time.Unix(0, sent)))
		}
		return t.mark(seq)
	}
}

func payloads(from, n int) [][]byte {
	now := time.Now()
	out := make([][]byte, n)
	for i := range out {
		out[i] = makePayload(from+i, now)
	}
	return out
}

// prefill stores n events in batches.
func prefill(ctx context.Context, l eventLog, n, batch int) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < n; i += batch {
		if err := l.publishBatch(ctx, payloads(i, min(batch, n-i))); err != nil {
			return 0, fmt.Errorf("prefill: %w", err)
		}
	}
	return time.Since(start), nil
}

// settled is implemented by logs in PostgreSQL, which analyze their tables
// after a prefill (see environment.analyze).
type settled interface {
	settle(ctx context.Context) error
}

// prefillSettled stores n events and lets the server's statistics catch up
// (not timed).
func prefillSettled(ctx context.Context, l eventLog, n, batch int) (time.Duration, error) {
	d, err := prefill(ctx, l, n, batch)
	if err != nil {
		return d, err
	}
	if s, ok := l.(settled); ok {
		if err := s.settle(ctx); err != nil {
			return d, fmt.Errorf("analyze: %w", err)
		}
	}
	return d, nil
}

// withLog runs f on a fresh log and removes it afterwards.
func withLog(ctx context.Context, b backend, o freshOpts, f func(l eventLog) error) error {
	l, err := b.fresh(ctx, o)
	if err != nil {
		return fmt.Errorf("fresh log: %w", err)
	}
	err = f(l)
	if d, ok := l.(diagnoser); ok {
		if msg := strings.TrimSpace(d.diagnostics()); msg != "" {
			fmt.Fprintf(os.Stderr, "  %T logged:\n%s\n", l, msg)
			if err != nil {
				err = fmt.Errorf("%w (the system logged: %.300s)", err, msg)
			}
		}
	}
	if cerr := l.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
		err = fmt.Errorf("close log: %w", cerr)
	}
	return err
}

func consumerNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", i)
	}
	return out
}

func runPublish(ctx context.Context, b backend, n, producers int, sz sizes, r *result) error {
	return withLog(ctx, b, freshOpts{consumers: []string{"c0"}}, func(l eventLog) error {
		ps := payloads(0, n)
		// Warm up: open the connections and create the tables that the
		// first calls would otherwise pay for (not timed).
		var warm sync.WaitGroup
		var warmErr atomic.Value
		for range producers {
			warm.Go(func() {
				if err := l.publish(ctx, ps[0]); err != nil {
					warmErr.CompareAndSwap(nil, err)
				}
			})
		}
		warm.Wait()
		if err, _ := warmErr.Load().(error); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		start := time.Now()
		for range producers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					if err := l.publish(ctx, ps[i]); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		if firstErr != nil {
			return firstErr
		}
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(n)/el.Seconds(), "events/s"
		r.Extra = map[string]any{"producers": producers}
		return nil
	})
}

func runPublishBatch(ctx context.Context, b backend, n int, sz sizes, r *result) error {
	return withLog(ctx, b, freshOpts{consumers: []string{"c0"}}, func(l eventLog) error {
		el, err := prefill(ctx, l, n, sz.Batch)
		if err != nil {
			return err
		}
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(n)/el.Seconds(), "events/s"
		r.Extra = map[string]any{"batch": sz.Batch}
		return nil
	})
}

// consumeAll starts specs, waits for trackers and stops the consumers.
func consumeAll(ctx context.Context, l eventLog, specs []consumerSpec, timeout time.Duration, ts ...*tracker) (time.Duration, error) {
	start := time.Now()
	stop, err := l.consume(ctx, specs)
	if err != nil {
		return 0, fmt.Errorf("consume: %w", err)
	}
	werr := waitAll(ctx, timeout, ts...)
	el := time.Since(start)
	if serr := stop(context.WithoutCancel(ctx)); serr != nil && werr == nil {
		werr = fmt.Errorf("stop consumers: %w", serr)
	}
	return el, werr
}

func runBurnDown(ctx context.Context, sys system, b backend, n, workers int, sz sizes, r *result) error {
	if !sys.competing && workers > 1 {
		r.addNote("no competing consumers: one subscription")
	}
	return withLog(ctx, b, freshOpts{consumers: []string{"c0"}}, func(l eventLog) error {
		fill, err := prefillSettled(ctx, l, n, sz.Batch)
		if err != nil {
			return err
		}
		t := newTracker(n)
		el, err := consumeAll(ctx, l, []consumerSpec{{name: "c0", workers: workers, handle: handler(t, nil)}}, sz.Timeout, t)
		if err != nil {
			return err
		}
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(n)/el.Seconds(), "events/s"
		r.Extra = map[string]any{"workers": workers, "prefill_seconds": fill.Seconds(), "handler_calls": t.calls.Load()}
		return nil
	})
}

func runFanOut(ctx context.Context, b backend, consumers int, sz sizes, r *result) error {
	names := consumerNames(consumers)
	return withLog(ctx, b, freshOpts{consumers: names}, func(l eventLog) error {
		n := sz.FanOut
		var ts []*tracker
		var specs []consumerSpec
		for _, name := range names {
			t := newTracker(n)
			ts = append(ts, t)
			specs = append(specs, consumerSpec{name: name, workers: sz.FanOutWorkers, handle: handler(t, nil)})
		}
		start := time.Now()
		stop, err := l.consume(ctx, specs)
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		fill, err := prefill(ctx, l, n, sz.Batch)
		if err == nil {
			err = waitAll(ctx, sz.Timeout, ts...)
		}
		el := time.Since(start)
		if serr := stop(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = fmt.Errorf("stop consumers: %w", serr)
		}
		if err != nil {
			return err
		}
		calls := int64(0)
		for _, t := range ts {
			calls += t.calls.Load()
		}
		total := n * consumers
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(total)/el.Seconds(), "handler calls/s"
		r.Extra = map[string]any{"consumers": consumers, "workers_per_consumer": sz.FanOutWorkers, "handler_calls": calls, "publish_seconds": fill.Seconds()}
		return nil
	})
}

func runLatency(ctx context.Context, b backend, rate int, sz sizes, r *result) error {
	return withLog(ctx, b, freshOpts{consumers: []string{"c0"}}, func(l eventLog) error {
		n := max(int(float64(rate)*sz.LatencyFor.Seconds()), 10)
		t := newTracker(n)
		lat := newLatencies()
		stop, err := l.consume(ctx, []consumerSpec{{name: "c0", workers: sz.LatencyWork, handle: handler(t, lat)}})
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		time.Sleep(200 * time.Millisecond) // let the consumer settle
		interval := time.Second / time.Duration(rate)
		ack := newLatencies() // due time to publish acknowledged
		var pubErrs atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; {
			now := time.Now()
			// Send every event whose time has come, each stamped with
			// the time it was due (open loop: no coordinated omission).
			for ; i < n; i++ {
				due := start.Add(time.Duration(i) * interval)
				if due.After(now) {
					break
				}
				p := makePayload(i, due)
				wg.Go(func() {
					if err := l.publish(ctx, p); err != nil {
						pubErrs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					ack.record(time.Since(due))
				})
			}
			if i < n {
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			}
		}
		sent := time.Since(start)
		wg.Wait()
		if e := pubErrs.Load(); e > 0 {
			_ = stop(context.WithoutCancel(ctx))
			return fmt.Errorf("%d publishes failed, first: %v", e, firstErr.Load())
		}
		err = waitAll(ctx, sz.Timeout, t)
		if serr := stop(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = fmt.Errorf("stop consumers: %w", serr)
		}
		if err != nil {
			return err
		}
		r.Events, r.Seconds = n, sent.Seconds()
		r.P50ms, r.P99ms, r.P999ms = lat.ms(50), lat.ms(99), lat.ms(99.9)
		r.Value, r.Unit = r.P99ms, "ms (p99)"
		r.Extra = map[string]any{"rate": rate, "achieved_rate": float64(n) / sent.Seconds(), "max_ms": lat.ms(100), "workers": sz.LatencyWork,
			"ack_p50_ms": ack.ms(50), "ack_p99_ms": ack.ms(99)}
		return nil
	})
}

func runReplay(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
	n := sz.Replay
	if !sys.replay {
		r.addNote("a queue has no history for a new consumer: measured as a burn-down of the same number of jobs queued for it")
	}
	return withLog(ctx, b, freshOpts{consumers: []string{"late"}}, func(l eventLog) error {
		fill, err := prefillSettled(ctx, l, n, sz.Batch)
		if err != nil {
			return err
		}
		t := newTracker(n)
		el, err := consumeAll(ctx, l, []consumerSpec{{name: "late", workers: 16, handle: handler(t, nil)}}, sz.Timeout, t)
		if err != nil {
			return err
		}
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(n)/el.Seconds(), "events/s"
		r.Extra = map[string]any{"catch_up_seconds": el.Seconds(), "prefill_seconds": fill.Seconds(), "workers": 16}
		return nil
	})
}

// runFailure: 1% of events fail on their first attempt, and the event in
// the middle fails on every attempt (3, then it is dead-lettered, put in a
// poison queue or terminated). Throughput counts the good events; the
// poison event's first and last attempts show whether others waited.
func runFailure(ctx context.Context, sys system, b backend, sz sizes, r *result) error {
	const maxAttempts = 3
	n := sz.Failure
	poison := n / 2
	return withLog(ctx, b, freshOpts{consumers: []string{"c0"}, maxAttempts: maxAttempts}, func(l eventLog) error {
		if _, err := prefillSettled(ctx, l, n, sz.Batch); err != nil {
			return err
		}
		t := newTracker(n)
		var good atomic.Int64
		var failedOnce, poisonAttempts atomic.Int64
		var poisonFirst, poisonLast atomic.Int64 // unix nanos
		var goodAtFirst, goodAtLast atomic.Int64
		poisonDone := make(chan struct{})
		var once sync.Once
		h := func(ctx context.Context, p []byte, attempt int) error {
			seq, _, err := parsePayload(p)
			if err != nil {
				return err
			}
			if seq == poison {
				a := poisonAttempts.Add(1)
				if a == 1 {
					poisonFirst.Store(time.Now().UnixNano())
					goodAtFirst.Store(good.Load())
				}
				if attempt >= maxAttempts {
					poisonLast.Store(time.Now().UnixNano())
					goodAtLast.Store(good.Load())
					once.Do(func() { close(poisonDone) })
				}
				return errors.New("poison event")
			}
			if seq%100 == 7 && attempt == 1 {
				failedOnce.Add(1)
				return errors.New("transient failure")
			}
			good.Add(1)
			return t.mark(seq)
		}
		_ = t.mark(poison) // never succeeds; not waited for
		t.calls.Store(0)
		start := time.Now()
		stop, err := l.consume(ctx, []consumerSpec{{name: "c0", workers: sz.FailWorkers, handle: h, maxAttempts: maxAttempts}})
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		err = waitAll(ctx, sz.Timeout, t)
		el := time.Since(start)
		outcome := "given up after 3 attempts"
		if err == nil {
			select {
			case <-poisonDone:
			case <-time.After(60 * time.Second):
				outcome = fmt.Sprintf("still retrying 60 s after the good events were done (%d attempts)", poisonAttempts.Load())
			}
		}
		if serr := stop(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = fmt.Errorf("stop consumers: %w", serr)
		}
		if err != nil {
			return err
		}
		good1, goodN := goodAtFirst.Load(), goodAtLast.Load()
		r.Events, r.Seconds, r.Value, r.Unit = n, el.Seconds(), float64(n-1)/el.Seconds(), "good events/s"
		r.Extra = map[string]any{
			"workers": sz.FailWorkers, "failed_once": failedOnce.Load(), "poison_attempts": poisonAttempts.Load(),
			"poison_outcome":                      outcome,
			"poison_retry_seconds":                float64(poisonLast.Load()-poisonFirst.Load()) / 1e9,
			"handled_while_poison_retried":        goodN - good1,
			"still_to_do_at_poison_first_failure": int64(n-1) - good1,
		}
		blocked := goodN-good1 == 0 && int64(n-1)-good1 > 0 && poisonLast.Load() > 0
		r.Extra["waited_behind_poison"] = blocked
		return nil
	})
}
