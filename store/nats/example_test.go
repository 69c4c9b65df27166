package nats_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gomonster/monster"
	_ "github.com/gomonster/monster/store/nats" // nats:// URLs
)

// Logging to NATS JetStream and consuming from it. The example embeds a
// nats-server on a random port; a program would name its servers:
// nats://nats-1:4222,nats-2:4222,nats-3:4222?replicas=3.
func Example() {
	dir, _ := os.MkdirTemp("", "monster-nats-example-")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, SyncAlways: true, NoLog: true, NoSigs: true})
	go srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(10 * time.Second)

	ctx := context.Background()
	m, err := monster.Open(ctx, srv.ClientURL()+"?prefix=shop", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	done := make(chan struct{})
	_ = m.Consume("mailer", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		fmt.Printf("%s %s\n", e.Type, e.Data)
		close(done)
		return nil
	}), nil)
	_ = m.Start(ctx)
	_, _ = m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": 2})
	<-done
	// Output: user.bought_shirt {"quantity":2,"user":"gordon"}
}
