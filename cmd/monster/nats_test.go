package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The command line and monster serve open nats:// stores: log, events and
// types against an embedded JetStream server on a random port, directly
// and through the daemon.
func TestNATSStore(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded nats-server did not start")
	}
	env := map[string]string{"MONSTER_STORE": srv.ClientURL() + "?prefix=cli"}

	out := mustRun(t, env, "log", "user.signed_up", `{"user":"ada"}`, "--key", "ada")
	if !strings.Contains(out, "logged user.signed_up at position") {
		t.Fatalf("log printed %q", out)
	}
	mustRun(t, env, "log", "order.placed", "7")
	out = mustRun(t, env, "events")
	if !strings.Contains(out, "user.signed_up") || !strings.Contains(out, "order.placed") {
		t.Errorf("events:\n%s", out)
	}
	out = mustRun(t, env, "types")
	if !strings.Contains(out, "user.signed_up") || !strings.Contains(out, "order.placed") {
		t.Errorf("types:\n%s", out)
	}
	// The same store, by --store, seen by a second command.
	out = mustRun(t, nil, "events", "--store", srv.ClientURL()+"?prefix=cli", "--type", "order.*")
	if !strings.Contains(out, "order.placed") || strings.Contains(out, "user.signed_up") {
		t.Errorf("events --store --type order.*:\n%s", out)
	}

	// monster serve on the same store: an event logged through the daemon
	// is read back from the store directly.
	daemonEnv := map[string]string{"MONSTER_SERVER": serve(t, srv.ClientURL()+"?prefix=cli")}
	mustRun(t, daemonEnv, "log", "invoice.sent", `{"n":3}`)
	out = mustRun(t, env, "events", "--type", "invoice.*")
	if !strings.Contains(out, "invoice.sent") {
		t.Errorf("an event logged through monster serve on nats:// is not in the store:\n%s", out)
	}
	out = mustRun(t, daemonEnv, "types")
	if !strings.Contains(out, "user.signed_up") || !strings.Contains(out, "invoice.sent") {
		t.Errorf("types through monster serve:\n%s", out)
	}
}

// A mongodb:// URL is taken (the store's scheme is registered): the error
// is about the unreachable server, not an unknown scheme.
func TestMongoDBSchemeRegistered(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(t, nil, "events", "--store", "mongodb://127.0.0.1:1/monster?serverSelectionTimeoutMS=200&connectTimeoutMS=200")
	if code == 0 {
		t.Fatal("events against an unreachable MongoDB succeeded")
	}
	if strings.Contains(errOut, "unknown store") || strings.Contains(errOut, "not one of") {
		t.Errorf("mongodb:// is not registered: %s", errOut)
	}
}
