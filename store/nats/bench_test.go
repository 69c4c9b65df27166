package nats_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gomonster/monster/store"
)

// burnEvents is how many events the burn-down benchmarks read.
const burnEvents = 100_000

func fill(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	const batch = 300
	data := []byte(`{"user":"gordon","quantity":2,"note":"a bench event of some hundred bytes, like a real one"}`)
	for i := 0; i < n; i += batch {
		events := make([]store.NewEvent, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			events = append(events, store.NewEvent{ID: fmt.Sprintf("e%d", j), Type: "bench.event", Time: time.Now().UTC(), Data: data})
		}
		if _, err := s.Append(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBurnDownRead reads 100,000 stored events with Read(512) in a
// loop, as a consumer catching up does.
func BenchmarkBurnDownRead(b *testing.B) {
	s := openStore(&testing.T{}, single.get(&testing.T{}), newPrefix(), nil)
	fill(b, s, burnEvents)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		var after int64
		n := 0
		for {
			page, err := s.Read(ctx, store.ReadParams{After: after, Limit: 512})
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			n += len(page)
			after = page[len(page)-1].Position
		}
		if n != burnEvents {
			b.Fatalf("read %d events, want %d", n, burnEvents)
		}
	}
	b.ReportMetric(float64(burnEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBurnDownRawJetStream is the yardstick: a durable pull consumer
// with explicit acks through 100,000 messages of one stream.
func BenchmarkBurnDownRawJetStream(b *testing.B) {
	url := single.get(&testing.T{})
	nc, err := natsgo.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	ctx := context.Background()
	prefix := newPrefix()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: prefix + "_raw", Subjects: []string{prefix + ".raw"}, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"user":"gordon","quantity":2,"note":"a bench event of some hundred bytes, like a real one"}`)
	for i := range burnEvents {
		if _, err := js.PublishAsync(prefix+".raw", data); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	b.ResetTimer()
	for i := range b.N {
		cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: fmt.Sprintf("c%d", i), AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(burnEvents)
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			wg.Done()
		}, jetstream.PullMaxMessages(500))
		if err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		cc.Stop()
	}
	b.ReportMetric(float64(burnEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend64 appends one event from each of 64 goroutines at a
// time, against synchronous JetStream publishes from 64 goroutines (the
// store's group commit happens above it, in the runtime; this is the
// store alone).
func BenchmarkAppend64(b *testing.B) {
	s := openStore(&testing.T{}, single.get(&testing.T{}), newPrefix(), nil)
	ctx := context.Background()
	b.SetParallelism(64)
	var n int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := fmt.Sprintf("a%d", n)
			mu.Unlock()
			if _, err := s.Append(ctx, []store.NewEvent{{ID: id, Type: "bench.event", Time: time.Now().UTC(), Data: []byte(`1`)}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
